"""Properties of the symbol-name grammar (``ltosyms.names.suffixes``) over generated names.

Names are built from the grammar's own parts (keywords, numbers, dots) mixed with noise, so
the generator reaches the corners (dangling keywords, empty parts, leading dots) that a plain
text strategy almost never produces. Derandomized: the same names on every run.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ltosyms.names.suffixes import SuffixKind, parse_name

KEYWORDS = (
    "constprop",
    "isra",
    "part",
    "cold",
    "localalias",
    "lto_priv",
    "llvm",
    "specialized",
    "argelim",
    "__uniq",
    "cfi",
    "cfi_jt",
)

numbers = st.integers(min_value=0, max_value=2**64).map(str)
identifiers = st.text(alphabet="abcxyz_ABC019$", min_size=1, max_size=8)
parts = st.one_of(
    identifiers,
    st.sampled_from(KEYWORDS),
    numbers,
    st.just(""),
    st.text(alphabet="._0123456789$\u0661 \n", max_size=4),
)
# name = part ("." part)* : every dot position and every kind of part between dots.
grammar_names = st.lists(parts, min_size=1, max_size=8).map(".".join)
noise_names = st.text(max_size=40)
names = st.one_of(grammar_names, noise_names)
promotion_numbers = st.integers(min_value=0, max_value=2**64 - 1)

PROPERTY = settings(derandomize=True, max_examples=400, deadline=None)


@PROPERTY
@given(names)
def test_parsing_never_raises_and_renders_the_name_back(name: str) -> None:
    parsed = parse_name(name)
    assert parsed.raw == name
    assert parsed.render() == name


@PROPERTY
@given(names.filter(bool))
def test_base_is_never_empty_for_a_non_empty_name(name: str) -> None:
    assert parse_name(name).base


@PROPERTY
@given(names)
def test_every_suffix_part_is_dotted_and_carries_its_number(name: str) -> None:
    parsed = parse_name(name)
    for part in parsed.suffixes:
        assert part.text.startswith(".")
        assert len(part.text) > 1
        if part.number is not None:
            # The number is the part's last dotted field ("constprop.00" has number 0).
            assert int(part.text.rsplit(".", 1)[1]) == part.number
        if part.kind is SuffixKind.NUMERIC:
            assert part.text[1:].isdecimal()


@PROPERTY
@given(names.filter(bool))
def test_the_base_is_the_shortest_split(name: str) -> None:
    """The base has no suffix chain of its own: parsing it again gives it back whole."""
    base = parse_name(name).base
    again = parse_name(base)
    assert again.base == base
    assert again.suffixes == ()


@PROPERTY
@given(names.filter(bool))
def test_removing_every_part_gives_the_base(name: str) -> None:
    parsed = parse_name(name)
    assert parsed.without(*SuffixKind) == parsed.base


@PROPERTY
@given(names.filter(bool), promotion_numbers)
def test_a_thinlto_promotion_keeps_the_base(name: str, number: int) -> None:
    """clang ThinLTO appends ``.llvm.<hash>`` to a local; the kernel prints the name cut at
    ``.llvm.`` (kernel/kallsyms.c cleanup_symbol_name, 6.1.42+). The grammar must give the
    promoted name the base of the original, with the promotion as the last part."""
    original = parse_name(name)
    promoted = parse_name(f"{name}.llvm.{number}")
    assert promoted.base == original.base
    assert promoted.suffixes[-1].kind is SuffixKind.LLVM
    assert promoted.suffixes[-1].number == number
    assert promoted.without(SuffixKind.LLVM) == original.without(SuffixKind.LLVM)
