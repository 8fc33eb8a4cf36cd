"""Rust symbol names: v0 (RFC 2603) and legacy demangling, and how output shows them.

Vectors: the RFC's own examples and the rustc-demangle crate's test suite (src/v0.rs and
src/legacy.rs tests, alternate ``{:#}`` form: no crate disambiguators, no legacy hash). Each
expected string was also checked against rustc-demangle itself when the vectors were added.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltosyms.names.rust import demangle

VECTORS = [
    # rustc-demangle v0.rs tests
    ("_RNvC6_123foo3bar", "123foo::bar"),  # demangle_crate_with_leading_digit
    ("_RC4f128", "f128"),  # demangle_crate_with_zero_disambiguator
    (
        "_RNqCs4fqI2P2rA04_11utf8_identsu30____7hkackfecea1cbdathfdh9hlq6y",
        "utf8_idents::საჭმელად_გემრიელი_სადილი",
    ),  # demangle_utf8_idents: punycode
    ("_RNCNCNgCs6DXkGYLi8lr_2cc5spawn00B5_", "cc::spawn::{closure#0}::{closure#0}"),
    (
        "_RNCINkXs25_NgCsbmNqQUJIY6D_4core5sliceINyB9_4IterhENuNgNoBb_4iter8iterator8Iterator"
        "9rpositionNCNgNpB9_6memchr7memrchrs_0E0Bb_",
        "<core::slice::Iter<u8> as core::iter::iterator::Iterator>::rposition::"
        "<core::slice::memchr::memrchr::{closure#1}>::{closure#0}",
    ),  # demangle_closure: backrefs, trait impl, generic args, disambiguated closure
    (
        "_RINbNbCskIICzLVDPPb_5alloc5alloc8box_freeDINbNiB4_5boxed5FnBoxuEp6OutputuEL_E"
        "Cs1iopQbuBiw2_3std",
        "alloc::alloc::box_free::<dyn alloc::boxed::FnBox<(), Output = ()>>",
    ),  # demangle_dyn_trait: associated-type binding, instantiating crate
    ("_RINvNtCs2YlXvHc9bKB_4core3mem4swapKj1_EB4_", "core::mem::swap::<1>"),  # const generic
    (
        "_RNvNvMCsd9PVOYlP1UU_7mycrateINtB4_7ExampleKRe616263_E3foo11ANOTHER_ONE",
        '<mycrate::Example<"abc">>::foo::ANOTHER_ONE',
    ),  # a &str const value
    # RFC 2603 examples: an inherent impl, a function in the main crate
    (
        "_RNvMsr_NtCs3ssYzQotkvD_3std4pathNtB5_7PathBuf3newCs15kBYyAo9fc_7mycrate",
        "<std::path::PathBuf>::new",
    ),
    ("_RNvCsfRZLbmQLy8h_4main4main", "main::main"),
    # legacy (rustc-demangle legacy.rs tests): the h<hash> part is left out, $..$ unescaped
    ("_ZN4core3fmt9Formatter3pad17h2d0a84d0b9a67e4eE", "core::fmt::Formatter::pad"),
    (
        "_ZN71_$LT$Test$u20$$u2b$$u20$$u27$static$u20$as$u20$foo..Bar$LT$Test$GT$$GT$3bar"
        "17h930b740aa94f1d3aE",
        "<Test + 'static as foo::Bar<Test>>::bar",
    ),
    ("_ZN3fooE", "foo"),
]


@pytest.mark.parametrize(("mangled", "demangled"), VECTORS, ids=[v[0][:40] for v in VECTORS])
def test_specification_vectors(mangled: str, demangled: str) -> None:
    assert demangle(mangled) == demangled


def test_a_vendor_suffix_is_allowed_and_garbage_is_not() -> None:
    # rustc-demangle lib.rs: after the path only a "."-suffix (LLVM's .llvm.N) may follow.
    assert demangle("_RNvCsfRZLbmQLy8h_4main4main.llvm.123") == "main::main"
    assert demangle("_RNvCsfRZLbmQLy8h_4main4mainZZ") is None


@pytest.mark.parametrize(
    "name",
    ["schedule", "try_to_wake_up.llvm.1", "_R", "_Rfoo", "_ZNfoo", "_RNvC3foo", "_ZN3foo", "_RINv"],
)
def test_what_is_not_rust_stays_as_it_is(name: str) -> None:
    assert demangle(name) is None


@settings(derandomize=True, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="_RZNCMXYIBKLEsuvhjmpe0123456789abc$.", max_size=60))
def test_any_text_demangles_or_is_refused_without_an_error(text: str) -> None:
    result = demangle("_R" + text)
    assert result is None or isinstance(result, str)
    result = demangle("_ZN" + text)
    assert result is None or isinstance(result, str)


def test_decode_text_shows_rust_names_demangled_and_json_keeps_the_elf_name() -> None:
    from ltosyms.dwarf import SourceLocation
    from ltosyms.render.decode_json import location_json
    from ltosyms.render.decode_text import shown_name

    mangled = "_RNvMsr_NtCs3ssYzQotkvD_3std4pathNtB5_7PathBuf3newCs15kBYyAo9fc_7mycrate"
    assert shown_name(mangled) == "<std::path::PathBuf>::new"
    assert shown_name("try_to_wake_up") == "try_to_wake_up"
    fields = SourceLocation.__dataclass_fields__
    values = dict.fromkeys(fields) | {"function": mangled, "inlined": False}
    document = location_json(SourceLocation(**values))
    assert document["function"] == mangled
    assert document["demangled"] == "<std::path::PathBuf>::new"
    plain = location_json(SourceLocation(**(values | {"function": "schedule"})))
    assert "demangled" not in plain
