"""Classification and matching rules of ``ltosyms diff``, one test per rule, on built records."""

from __future__ import annotations

import dataclasses
import inspect
import itertools
from collections.abc import Callable, Sequence

import pytest

from ltosyms.diff.census import InlinedFunctions
from ltosyms.diff.classify import canonical_name, classify, clone_shape
from ltosyms.diff.match import folded_partners, match_groups
from ltosyms.diff.model import (
    Caller,
    Change,
    ChangeClass,
    EmptyGroups,
    InlinedInstances,
    SectionClass,
    SymbolGroup,
    SymbolKind,
    make_change,
    make_inlined,
)
from ltosyms.names.suffixes import parse_name

_index = itertools.count(1)


def group(
    *names: str,
    size: int = 100,
    unit: str | None = "kernel/foo.c",
    file_symbol: str | None = None,
    kind: SymbolKind = SymbolKind.FUNCTION,
    link_address: int = 0x1000,
    is_global: bool = False,
    members: int | None = None,
    aliases: tuple[str, ...] = (),
) -> SymbolGroup:
    return SymbolGroup(
        kind=kind,
        base_name=parse_name(names[0]).base,
        names=names,
        size=size,
        link_address=link_address,
        section_class=SectionClass.TEXT,
        unit=unit,
        file_symbol=file_symbol,
        dwarf_name=parse_name(names[0]).base,
        decl_file=unit,
        is_global=is_global,
        symbol_indexes=tuple(next(_index) for _ in names),
        member_count=members if members is not None else len(names) - len(aliases),
        alias_names=aliases,
    )


def test_clone_shape_ignores_numbers_and_promotions() -> None:
    assert clone_shape("foo.part.0.cold") == ("part", "cold")
    assert clone_shape("foo.constprop.3.llvm.99") == ("constprop",)
    assert clone_shape("foo.llvm.1234") == ()


def test_canonical_name_drops_promotions_and_clone_numbers() -> None:
    assert canonical_name("foo.lto_priv.0") == "foo"
    assert canonical_name("foo.constprop.0") == canonical_name("foo.constprop.7")
    assert canonical_name("widget_refresh.part.0.lto_priv.0") == "widget_refresh.part"


@pytest.mark.parametrize(
    ("base", "new", "inlined", "expected"),
    [
        (None, group("foo"), None, ChangeClass.NEW),
        (group("foo"), None, 3, ChangeClass.DROPPED_INLINED),
        (group("foo"), None, 0, ChangeClass.DROPPED_REMOVED),
        (group("foo"), None, None, ChangeClass.DROPPED_REMOVED),  # no DWARF: no evidence
        (group("foo"), group("foo.constprop.0"), 0, ChangeClass.SPECIALIZED),
        (group("foo"), group("foo", "foo.isra.0"), 0, ChangeClass.SPECIALIZED),
        (group("foo"), group("foo", "foo.part.0.cold"), 0, ChangeClass.SPECIALIZED),
        # A hot/cold split is not a specialization, whatever else the names say.
        (group("foo"), group("foo", "foo.cold"), 0, ChangeClass.SPLIT),
        (group("foo"), group("foo.lto_priv.0", "foo.lto_priv.0.cold"), 0, ChangeClass.SPLIT),
        (group("foo", "foo.part.0"), group("foo", "foo.part.0.cold"), 0, ChangeClass.SPLIT),
        (group("foo"), group("foo.llvm.12", size=140), 0, ChangeClass.RENAMED),
        (group("foo.3"), group("foo.lto_priv.0"), 0, ChangeClass.RENAMED),
        # Numbers the compiler picks (ThinLTO module hashes, clone counters) are no rename.
        (group("foo.llvm.1"), group("foo.llvm.2"), 0, ChangeClass.UNCHANGED),
        (group("foo.llvm.1"), group("foo.llvm.2", size=120), 0, ChangeClass.GROWN),
        (group("foo.constprop.0"), group("foo.constprop.1"), 0, ChangeClass.UNCHANGED),
        (group("foo", "foo.cold"), group("foo", size=80), 0, ChangeClass.SHRUNK),
        (group("foo"), group("foo", size=120), 0, ChangeClass.GROWN),
        (group("foo"), group("foo", size=100), 0, ChangeClass.UNCHANGED),
    ],
)
def test_classification_rules(
    base: SymbolGroup | None,
    new: SymbolGroup | None,
    inlined: int | None,
    expected: ChangeClass,
) -> None:
    assert classify(base, new, inlined) is expected


def test_a_function_base_had_only_inlined_is_outlined() -> None:
    assert classify(None, group("vfs_stat"), None, 2) is ChangeClass.OUTLINED
    assert classify(None, group("vfs_stat"), None, 0) is ChangeClass.NEW
    assert classify(None, group("vfs_stat"), None, None) is ChangeClass.NEW  # no BASE DWARF
    assert classify(None, group("table", kind=SymbolKind.OBJECT), None, 2) is ChangeClass.NEW


def test_objects_are_never_dropped_inlined() -> None:
    data = group("table", kind=SymbolKind.OBJECT)
    assert classify(data, None, 5) is ChangeClass.DROPPED_REMOVED


def test_same_named_statics_stay_apart_by_unit_in_any_order() -> None:
    base = [
        group("name_show", unit="drivers/a.c", size=32, link_address=0x10),
        group("name_show", unit="drivers/b.c", size=32, link_address=0x20),
        group("name_show", unit="drivers/c.c", size=72, link_address=0x30),
    ]
    new = [
        group("name_show.lto_priv.1", unit="drivers/c.c", size=80, link_address=0x5),
        group("name_show", unit="drivers/b.c", size=32, link_address=0x50),
        group("name_show.lto_priv.0", unit="drivers/a.c", size=32, link_address=0x90),
    ]
    for new_order in itertools.permutations(new):
        pairs = match_groups(base, list(new_order))
        assert len(pairs) == 3
        for base_group, new_group in pairs:
            assert base_group is not None and new_group is not None
            assert base_group.unit == new_group.unit


def test_promoted_static_without_unit_matches_when_unique() -> None:
    base = [group("try_to_wake_up", unit=None, file_symbol="core.c")]
    new = [group("try_to_wake_up.llvm.147", unit=None)]
    assert match_groups(base, new) == [(base[0], new[0])]


def test_file_symbol_separates_duplicates_without_dwarf() -> None:
    base = [
        group("type_show", unit=None, file_symbol="a.c", link_address=0x10),
        group("type_show", unit=None, file_symbol="b.c", link_address=0x20),
    ]
    new = [
        group("type_show", unit=None, file_symbol="b.c", link_address=0x10),
        group("type_show", unit=None, file_symbol="a.c", link_address=0x20),
    ]
    pairs = match_groups(base, new)
    assert {(b.file_symbol, n.file_symbol) for b, n in pairs if b and n} == {
        ("a.c", "a.c"),
        ("b.c", "b.c"),
    }


def test_leftover_duplicates_pair_in_address_order_and_surplus_is_dropped() -> None:
    base = [
        group("jhash", unit=None, link_address=0x30, size=3),
        group("jhash", unit=None, link_address=0x10, size=1),
        group("jhash", unit=None, link_address=0x20, size=2),
    ]
    new = [
        group("jhash", unit=None, link_address=0x200, size=2),
        group("jhash", unit=None, link_address=0x100, size=1),
    ]
    pairs = match_groups(base, new)
    matched = sorted((b.size, n.size) for b, n in pairs if b and n)
    assert matched == [(1, 1), (2, 2)]
    assert [(b.size if b else None, n) for b, n in pairs if n is None] == [(3, None)]


def test_alias_names_match_groups_whose_owner_differs() -> None:
    base = [group("memmove", "__memmove", unit=None)]
    new = [group("__memmove", "memmove", unit=None)]
    assert match_groups(base, new) == [(base[0], new[0])]


def test_statics_of_different_units_never_pair() -> None:
    # Out-of-line copies of a header inline: one per unit that did not inline it.
    base = [group("put_page", unit="init/do_mounts.c")]
    new = [group("put_page", unit="kernel/futex/core.c")]
    assert match_groups(base, new) == [(base[0], None), (None, new[0])]
    # A global name is one definition: it may change units (DWARF of an internalized variable).
    base = [group("panic_on_oops", unit="kernel/panic.c", is_global=True)]
    new = [group("panic_on_oops", unit="drivers/mailbox/mailbox.c")]
    assert match_groups(base, new) == [(base[0], new[0])]


def test_same_named_copies_pair_by_unit_then_leave_the_rest() -> None:
    base = [
        group("put_page", unit="kernel/futex/core.c", link_address=0x10),
        group("put_page", unit="mm/memory.c", link_address=0x20),
    ]
    new = [
        group("put_page", unit="init/do_mounts.c", link_address=0x5),
        group("put_page", unit="kernel/futex/core.c", link_address=0x50),
    ]
    for new_order in itertools.permutations(new):
        pairs = match_groups(base, list(new_order))
        assert sorted(((b.unit if b else ""), (n.unit if n else "")) for b, n in pairs) == [
            ("", "init/do_mounts.c"),
            ("kernel/futex/core.c", "kernel/futex/core.c"),
            ("mm/memory.c", ""),
        ]


def test_a_group_left_over_pairs_with_an_empty_symbol_of_its_name() -> None:
    # ThinLTO empties the lockdep keys (and promotes some): still there, size 0.
    base = [
        group("alloc_super.__key", "alloc_super.__key.9", kind=SymbolKind.OBJECT, size=2),
        group("mmap_init.__key", kind=SymbolKind.OBJECT, size=1, unit="mm/mmap.c"),
        group("gone", kind=SymbolKind.OBJECT, size=1),
    ]
    empty = [
        group("alloc_super.__key", "alloc_super.__key.9", kind=SymbolKind.OBJECT, size=0),
        group("mmap_init.__key.llvm.60", kind=SymbolKind.OBJECT, size=0, unit=None),
        group("unrelated", kind=SymbolKind.OBJECT, size=0),
    ]
    pairs = match_groups(base, [], (), empty)
    assert pairs == [(base[0], empty[0]), (base[1], empty[1]), (base[2], None)]
    assert classify(base[0], empty[0], None) is ChangeClass.SHRUNK
    assert classify(base[1], empty[1], None) is ChangeClass.RENAMED


def test_folded_partner_is_the_group_holding_the_name_as_an_alias() -> None:
    # gcc -fipa-icf: one body, ct_kernel_exit_state an alias of ct_kernel_enter_state.
    folded = group(
        "ct_kernel_enter_state", "ct_kernel_exit_state", aliases=("ct_kernel_exit_state",)
    )
    exit_state = group("ct_kernel_exit_state")
    assert folded_partners([exit_state], [folded]) == {id(exit_state): "ct_kernel_enter_state"}
    # Another member of a group (not an alias) is no folding: different bytes.
    parts = group("foo", "foo.cold")
    assert folded_partners([group("foo.cold")], [parts]) == {}


def test_collections_of_objects_are_labelled_as_such() -> None:
    names = [f".str.{n}.llvm.28" for n in range(341)]
    strings = group(*names, kind=SymbolKind.OBJECT, aliases=(names[-1],))
    assert strings.label == "341 string literals (.str.*)"
    keys = group("alloc_super.__key", "alloc_super.__key.9", kind=SymbolKind.OBJECT)
    assert keys.label == "2 lockdep class keys (alloc_super.__key.*)"
    assert group("foo", "foo.cold").label == "foo"  # a function and its parts: the function
    assert group("memcpy", "__memcpy", aliases=("__memcpy",)).label == "memcpy"


def test_every_group_appears_exactly_once() -> None:
    base = [group(f"f{i % 7}", unit=f"u{i % 3}.c", link_address=i) for i in range(40)]
    new = [group(f"f{i % 5}", unit=f"u{i % 4}.c", link_address=i) for i in range(30)]
    pairs = match_groups(base, new)
    assert sorted(id(b) for b, _n in pairs if b) == sorted(id(b) for b in base)
    assert sorted(id(n) for _b, n in pairs if n) == sorted(id(n) for n in new)


@pytest.mark.parametrize(
    ("record", "make", "values"),
    [
        (
            InlinedInstances,
            make_inlined,
            {
                "name": "put_page",
                "decl_file": "include/linux/mm.h",
                "count": 3,
                "callers": ((1, 3),),
            },
        ),
        (
            Change,
            make_change,
            {
                "kind": SymbolKind.FUNCTION,
                "change_class": ChangeClass.DROPPED_INLINED,
                "base": group("put_page"),
                "new": None,
                "inlined_count_base": 0,
                "inlined_count_new": 3,
                "callers_new": (Caller(name="do_mounts", count=3),),
                "directory": "kernel",
                "folded_with": None,
            },
        ),
    ],
)
def test_fast_builders_take_every_field_of_their_record_by_keyword(
    record: type[object], make: Callable[..., object], values: dict[str, object]
) -> None:
    """The diff's fast builders and their records must not drift apart: same fields, same
    order, every one a keyword, and the record built equals the dataclass's own."""
    parameters = inspect.signature(make).parameters
    assert list(parameters) == [field.name for field in dataclasses.fields(record)]  # type: ignore[arg-type]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())
    assert make(**values) == record(**values)


def _inlined() -> InlinedFunctions:
    return InlinedFunctions.from_records(
        [
            ("put_page", "include/linux/mm.h", 3, ((0x1000, 2), (0x2000, 1))),
            ("show", "drivers/a.c", 1, ((0x3000, 1),)),
            ("show", "drivers/b.c", 2, ((0x4000, 2),)),
            ("lone", None, 5, ()),
        ]
    )


def test_inlined_functions_count_by_name_and_file_else_by_the_only_name() -> None:
    inlined = _inlined()
    assert inlined.count_for("put_page", "include/linux/mm.h") == 3
    assert inlined.count_for("put_page", "mm/other.h") == 3  # the only put_page
    assert inlined.count_for("show", "drivers/b.c") == 2
    assert inlined.count_for("show", None) == 0  # two of that name: none is chosen
    assert inlined.count_for("absent", None) == 0
    assert inlined.named("show") == [("show", "drivers/a.c"), ("show", "drivers/b.c")]
    assert inlined.unique_counts == {"put_page": 3, "lone": 5}


def test_inlined_functions_make_each_record_with_its_own_callers() -> None:
    inlined = _inlined()
    assert len(inlined) == 4 and ("lone", None) in inlined and ("show", None) not in inlined
    assert inlined[("show", "drivers/b.c")] == make_inlined(
        name="show", decl_file="drivers/b.c", count=2, callers=((0x4000, 2),)
    )
    assert inlined[("lone", None)].callers == ()
    assert inlined[("put_page", "include/linux/mm.h")].callers == ((0x1000, 2), (0x2000, 1))
    with pytest.raises(KeyError):
        inlined[("show", None)]
    # The columns it was made of, and a mapping equal to one made from them.
    assert InlinedFunctions(**dict(zip(_COLUMN_NAMES, inlined.columns(), strict=True))) == inlined
    assert dict(inlined) == {key: inlined[key] for key in inlined}


_COLUMN_NAMES = (
    "names",
    "decl_files",
    "counts",
    "caller_counts",
    "caller_low_pcs",
    "caller_instances",
)


def test_empty_groups_are_made_when_asked_for_in_one_call_per_take() -> None:
    groups = [group(f"key{i}.__key", size=0, kind=SymbolKind.OBJECT) for i in range(5)]
    calls: list[list[int]] = []

    def make(positions: Sequence[int]) -> list[SymbolGroup]:
        calls.append(list(positions))
        return [groups[p] for p in positions]

    empty = EmptyGroups([g.names for g in groups], make)
    assert len(empty) == 5 and calls == []
    empty.take([3, 1, 3])
    assert calls == [[1, 3]]
    assert empty[1] is groups[1] and empty[-2] is groups[3] and calls == [[1, 3]]
    assert empty[0] is groups[0] and calls == [[1, 3], [0]]
    assert list(empty) == groups and calls == [[1, 3], [0], [2, 4]]
    assert list(empty[1:3]) == groups[1:3]
    assert empty == EmptyGroups.of(groups) and empty != EmptyGroups.of(groups[:4])
    with pytest.raises(IndexError):
        empty[5]
