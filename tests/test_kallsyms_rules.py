"""The kallsyms keep and cleanup rules (ltosyms.names.kallsyms) against real build outputs.

System.map is scripts/mksysmap output, which is exactly what scripts/kallsyms reads (6.1
scripts/link-vmlinux.sh), so every corpus kernel's System.map pins both rule stages; the
``kallsyms_num_syms`` value each kernel stores pins the kept count.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import KERNEL_VARIANTS, Corpus

from ltosyms.elf.kernel import load_vmlinux
from ltosyms.elf.symtab import SymbolTable
from ltosyms.names.kallsyms import (
    CLEANUP_BY_NAME,
    CLEANUP_RULES,
    KEEP_FILTERS,
    Stage,
    cleanup_rule_for,
    in_system_map,
    parse_kernel_version,
    printed_name,
    rules_in_order,
    stored_symbol_count,
)

# scripts/kallsyms.c 6.1 is_ignored_symbol(), written out again for the x86-64/arm64 kernels of
# the corpus: what kallsyms drops from its System.map input.
KALLSYMS_IGNORED_NAMES = {
    "kallsyms_addresses",
    "kallsyms_offsets",
    "kallsyms_relative_base",
    "kallsyms_num_syms",
    "kallsyms_names",
    "kallsyms_markers",
    "kallsyms_token_table",
    "kallsyms_token_index",
    "kallsyms_seqs_of_names",
}
KALLSYMS_KEPT_ABSOLUTE = {"__kernel_syscall_via_break", "__kernel_syscall_via_epc"}


def system_map(path: Path) -> list[tuple[int, str, str]]:
    entries = []
    for line in path.read_text().splitlines():
        address, letter, name = line.split()
        entries.append((int(address, 16), letter, name))
    return entries


def kallsyms_input_kept(entry: tuple[int, str, str]) -> bool:
    _, letter, name = entry
    if name in KALLSYMS_IGNORED_NAMES or letter in "UuNn":
        return False
    return not (letter in "Aa" and name not in KALLSYMS_KEPT_ABSOLUTE)


@pytest.fixture(scope="module")
def tables(corpus: Corpus) -> dict[str, SymbolTable]:
    return {v: load_vmlinux(corpus.kernel_vmlinux(v)).symbols for v in KERNEL_VARIANTS}


@pytest.mark.parametrize("variant", KERNEL_VARIANTS)
def test_system_map_rows_equal_system_map(
    corpus: Corpus, tables: dict[str, SymbolTable], variant: str
) -> None:
    # Same addresses, names and nm type letters as the build's own System.map.
    table = tables[variant]
    ours = sorted(
        (table.link_addresses[i], table.nm_types[i], table.names[i])
        for i in range(len(table))
        if table.is_listed(i) and in_system_map(table.names[i], table.nm_types[i])
    )
    assert ours == sorted(system_map(corpus.kernels / variant / "System.map"))


@pytest.mark.parametrize("variant", KERNEL_VARIANTS)
def test_kept_symbols_equal_what_kallsyms_keeps_of_system_map(
    corpus: Corpus, tables: dict[str, SymbolTable], variant: str
) -> None:
    table = tables[variant]
    ours = sorted((table.link_addresses[i], table.names[i]) for i in table.kept_indexes)
    expected = sorted(
        (address, name)
        for address, letter, name in system_map(corpus.kernels / variant / "System.map")
        if kallsyms_input_kept((address, letter, name))
    )
    assert ours == expected
    # ... and the count is the one the kernel stored (CONFIG_KALLSYMS_ALL=y in all of them).
    assert table.kept_count == stored_symbol_count(table)
    assert table.rule.all_symbols


def test_empty_writable_non_alloc_section_symbols_print_question_mark(
    tables: dict[str, SymbolTable],
) -> None:
    # x86 `.data_nosave` is linked empty and not SHF_ALLOC: nm prints `?` for the symbols in it,
    # and kallsyms keeps them (they were the 2 symbols between 25197 and the stored 25199).
    table = tables["gcc-nolto"]
    for name in ("__nosave_begin", "__nosave_end"):
        (symbol,) = table.by_name(name)
        assert symbol.nm_type == "?"
        assert symbol.kallsyms_size is not None


def test_debian_kept_count_equals_stored_count(corpus: Corpus) -> None:
    table = load_vmlinux(corpus.debian_vmlinux()).symbols
    stored = stored_symbol_count(table)
    assert stored is not None and stored > 80000
    assert table.kept_count == stored


def test_every_rule_row_cites_its_source() -> None:
    for keep in KEEP_FILTERS:
        source = "scripts/mksysmap" if keep.stage is Stage.MKSYSMAP else "scripts/kallsyms.c"
        assert keep.origin.startswith(source), keep
    for rule in CLEANUP_RULES:
        assert "kernel/kallsyms.c" in rule.origin or "never merged" in rule.origin, rule


@pytest.mark.parametrize(
    ("elf_name", "rule", "printed"),
    [
        ("try_to_wake_up.llvm.14717294184349261171", "llvm-suffix", "try_to_wake_up"),
        ("try_to_wake_up.llvm.14717294184349261171", "first-dot", "try_to_wake_up"),
        (
            "try_to_wake_up.llvm.14717294184349261171",
            "none",
            "try_to_wake_up.llvm.14717294184349261171",
        ),
        (".str.1.llvm.291471327082667993", "llvm-suffix", ".str.1"),
        (".str.1.llvm.291471327082667993", "first-dot", ""),  # kernel strchr: the first byte
        ("name_to_dev_t.cold", "first-dot", "name_to_dev_t"),
        ("name_to_dev_t.cold", "llvm-suffix", "name_to_dev_t.cold"),
        ("NF_HOOK.constprop.0.isra.0", "first-dot", "NF_HOOK"),
        ("__already_done.12", "gcc-lto-numeric", "__already_done"),
        ("foo.constprop.0", "gcc-lto-numeric", "foo.constprop"),
        ("create_worker.lto_priv.0", "first-dot", "create_worker"),
        ("create_worker.lto_priv.0", "gcc-lto-numeric", "create_worker.lto_priv"),
        ("static_key_enable.580", "first-dot", "static_key_enable"),
        ("static_key_enable.580", "llvm-suffix", "static_key_enable.580"),
        # 8b8e6b5d3b01's own example: clang < 13 ThinLTO with CFI
        ("foo$707af9a22804d33c81801f27dcfe489b", "cfi-hash", "foo"),
        (
            "foo$707af9a22804d33c81801f27dcfe489b",
            "first-dot",
            "foo$707af9a22804d33c81801f27dcfe489b",
        ),
    ],
)
def test_printed_name(elf_name: str, rule: str, printed: str) -> None:
    assert printed_name(elf_name, CLEANUP_BY_NAME[rule]) == printed


@pytest.mark.parametrize(
    ("version", "clang_lto", "rule"),
    [
        ((6, 1, 192), False, "none"),  # gcc: cleanup_symbol_name() returns early
        ((5, 10, 0), True, "none"),
        ((5, 15, 0), True, "none"),  # only CFI builds cut `$` (8b8e6b5d3b01, 5.13)
        ((5, 16, 0), True, "first-dot"),  # 6eb4bd92c1ce
        ((6, 1, 41), True, "first-dot"),
        ((6, 1, 42), True, "llvm-suffix"),  # stable 9d95201b2b2a
        ((6, 1, 192), True, "llvm-suffix"),
        ((6, 2, 0), True, "first-dot"),
        ((6, 4, 6), True, "first-dot"),
        ((6, 4, 7), True, "llvm-suffix"),  # stable 03b3768bd1af
        ((6, 5, 0), True, "llvm-suffix"),  # 8cc32a9bbf29
        ((6, 10, 6), True, "llvm-suffix"),
        ((6, 10, 7), True, "none"),  # stable backport of fb6a421fb615
        ((6, 12, 0), True, "none"),
        (None, True, "none"),
    ],
)
def test_cleanup_rule_by_version(
    version: tuple[int, int, int] | None, clang_lto: bool, rule: str
) -> None:
    assert cleanup_rule_for(version, clang_lto).name == rule


def test_every_era_row_names_its_commits_and_versions() -> None:
    for rule in CLEANUP_RULES:
        assert all(commit in rule.origin for commit in rule.commits), rule
    # No clang-LTO kernel version falls between two eras or into two (5.13-5.15: `none`
    # unless built with CFI, which the version does not say).
    for major, minor in [(5, m) for m in range(10, 20)] + [(6, m) for m in range(14)]:
        for sublevel in (0, 6, 7, 41, 42, 200):
            version = (major, minor, sublevel)
            owners = [
                r.name for r in CLEANUP_RULES if any(version in v for v in r.clang_lto_versions)
            ]
            assert owners in (["none"], ["first-dot"], ["llvm-suffix"], ["none", "cfi-hash"]), (
                version
            )


def test_every_era_is_tried_the_own_first() -> None:
    own = cleanup_rule_for((6, 1, 30), True)
    assert [r.name for r in rules_in_order(own)] == [
        "first-dot",
        "none",
        "gcc-lto-numeric",
        "cfi-hash",
        "llvm-suffix",
    ]


def test_kernel_version_from_distribution_banner() -> None:
    banner = (
        "Linux version 6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian "
        "12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP "
        "PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)"
    )
    assert parse_kernel_version(banner) == (6, 1, 192)
    assert parse_kernel_version("Linux version 6.1.192 (root@vm) (Debian clang)") == (6, 1, 192)
    assert parse_kernel_version("not a banner") is None
