"""The suffix grammar, stated as a table of real names from real kernels.

Names come from the Debian 6.1 gcc vmlinux, the corpus clang ThinLTO 6.1.192 vmlinux and
docs/kernel-facts.md#symbol-suffixes; each row is (ELF name, expected base, expected (kind, text)
parts).
"""

from __future__ import annotations

import pytest

from ltosyms.names.suffixes import SuffixKind, parse_name

C, IS, P, K = SuffixKind.CONSTPROP, SuffixKind.ISRA, SuffixKind.PART, SuffixKind.COLD
L, N, LP = SuffixKind.LLVM, SuffixKind.NUMERIC, SuffixKind.LTO_PRIV

REAL_NAMES: list[tuple[str, str, list[tuple[SuffixKind, str]]]] = [
    # gcc 12, Debian 6.1 (no LTO)
    ("dump_stack_lvl", "dump_stack_lvl", []),
    ("set_pages_state.cold", "set_pages_state", [(K, ".cold")]),
    ("sanitize_boot_params.constprop.0", "sanitize_boot_params", [(C, ".constprop.0")]),
    ("membuf_write.isra.0", "membuf_write", [(IS, ".isra.0")]),
    ("snp_cpuid_hv.part.0", "snp_cpuid_hv", [(P, ".part.0")]),
    ("get_fixed_ranges.constprop.0.cold", "get_fixed_ranges", [(C, ".constprop.0"), (K, ".cold")]),
    (
        "invoke_bpf_prog.constprop.0.isra.0.cold",
        "invoke_bpf_prog",
        [(C, ".constprop.0"), (IS, ".isra.0"), (K, ".cold")],
    ),
    ("ftrace_regex_write.part.0.isra.0", "ftrace_regex_write", [(P, ".part.0"), (IS, ".isra.0")]),
    ("link_path_walk.part.0.constprop.0", "link_path_walk", [(P, ".part.0"), (C, ".constprop.0")]),
    ("NF_HOOK.constprop.0.isra.0", "NF_HOOK", [(C, ".constprop.0"), (IS, ".isra.0")]),
    ("foo.part.0.cold", "foo", [(P, ".part.0"), (K, ".cold")]),
    ("nmi_handle.part.0.cold", "nmi_handle", [(P, ".part.0"), (K, ".cold")]),
    ("kasan_report.part.1", "kasan_report", [(P, ".part.1")]),
    ("tcp_sendmsg.cold.12", "tcp_sendmsg", [(K, ".cold.12")]),
    # function-local static objects: numeric suffix, honestly a numeric part
    ("__already_done.17", "__already_done", [(N, ".17")]),
    ("__func__.1", "__func__", [(N, ".1")]),
    ("__UNIQUE_ID_ddebug414.94", "__UNIQUE_ID_ddebug414", [(N, ".94")]),
    # names that merely contain dots keep them in the base
    ("head64.c", "head64.c", []),
    ("head_64.o", "head_64.o", []),
    ("head64.c.552cf5a6", "head64.c.552cf5a6", []),
    ("sanitize_boot_params.scratch", "sanitize_boot_params.scratch", []),
    (".L__unnamed_1", ".L__unnamed_1", []),
    # clang 14 ThinLTO, 6.1.192
    (
        "try_to_wake_up.llvm.14717294184349261171",
        "try_to_wake_up",
        [(L, ".llvm.14717294184349261171")],
    ),
    ("init_free_wq.llvm.9299820469743902298", "init_free_wq", [(L, ".llvm.9299820469743902298")]),
    (".str.1.llvm.3259167985363094970", ".str", [(N, ".1"), (L, ".llvm.3259167985363094970")]),
    ("intel_pmu_init.__quirk.34", "intel_pmu_init.__quirk", [(N, ".34")]),
    # gcc LTO, other LLVM passes, CFI
    ("cpu_startup_entry.lto_priv.0", "cpu_startup_entry", [(LP, ".lto_priv.0")]),
    ("name_show.lto_priv.3.cold", "name_show", [(LP, ".lto_priv.3"), (K, ".cold")]),
    ("do_one_initcall.localalias", "do_one_initcall", [(SuffixKind.LOCALALIAS, ".localalias")]),
    ("memcpy_fn.specialized.1", "memcpy_fn", [(SuffixKind.SPECIALIZED, ".specialized.1")]),
    ("foo.argelim", "foo", [(SuffixKind.ARGELIM, ".argelim")]),
    ("bar.__uniq.12345", "bar", [(SuffixKind.UNIQ, ".__uniq.12345")]),
    ("perf_trace_sched.cfi_jt", "perf_trace_sched", [(SuffixKind.CFI_JT, ".cfi_jt")]),
    ("perf_trace_sched.cfi", "perf_trace_sched", [(SuffixKind.CFI, ".cfi")]),
]


@pytest.mark.parametrize(("name", "base", "parts"), REAL_NAMES, ids=[r[0] for r in REAL_NAMES])
def test_parse_real_name(name: str, base: str, parts: list[tuple[SuffixKind, str]]) -> None:
    parsed = parse_name(name)
    assert parsed.base == base
    assert [(p.kind, p.text) for p in parsed.suffixes] == parts
    assert parsed.render() == name


def test_numbers_are_kept() -> None:
    parsed = parse_name("try_to_wake_up.llvm.14717294184349261171")
    assert parsed.suffixes[0].number == 14717294184349261171
    assert parse_name("foo.cold").suffixes[0].number is None


def test_clone_and_promotion_predicates() -> None:
    assert parse_name("foo.constprop.0.isra.0").is_clone
    assert not parse_name("foo.constprop.0").is_promoted
    assert parse_name("foo.llvm.123").is_promoted
    assert parse_name("foo.lto_priv.0").is_promoted
    assert not parse_name("foo").is_promoted
    assert parse_name("foo.part.0.cold").without(SuffixKind.COLD) == "foo.part.0"


def test_keyword_without_number_is_not_a_suffix() -> None:
    # ".constprop" alone is not what gcc emits: the name stays whole rather than mis-parsed.
    assert parse_name("foo.constprop").base == "foo.constprop"
    assert parse_name("foo.llvm").base == "foo.llvm"


def test_every_real_name_round_trips(corpus: object) -> None:
    from conftest import Corpus

    from ltosyms.elf.kernel import load_vmlinux

    assert isinstance(corpus, Corpus)
    for variant in ("clang-thinlto", "gcc-nolto"):
        names = load_vmlinux(corpus.kernel_vmlinux(variant)).symbols.names
        assert all(parse_name(n).render() == n for n in names)
        assert all(parse_name(n).base for n in names if n)
