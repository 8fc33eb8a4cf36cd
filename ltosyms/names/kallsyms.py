"""The kernel's kallsyms rules, as data: which symbols kallsyms keeps, and what name it prints.

Two kinds of rules, each row citing where it comes from:

* **Keep rules** (build time): ``scripts/link-vmlinux.sh`` feeds ``scripts/mksysmap`` output to
  ``scripts/kallsyms``; both drop symbols by type letter and name. Without
  ``CONFIG_KALLSYMS_ALL`` everything outside ``[_stext, _etext]`` and
  ``[_sinittext, _einittext]`` is dropped too. Kallsyms sizes are computed over what remains.
* **Cleanup rules** (run time): ``kernel/kallsyms.c`` ``cleanup_symbol_name()`` shortens
  clang-LTO names before printing them; the rule changed several times. The eras live in
  :mod:`ltosyms.names.eras` and are re-exported here, where the keep rules' users look.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ltosyms.errors import InputError
from ltosyms.names.eras import (
    CLEANUP_BY_NAME,
    CLEANUP_RULES,
    CleanupKind,
    CleanupRule,
    candidates_for_printed,
    cleanup_rule_for,
    parse_kernel_version,
    printed_name,
    rules_in_order,
)

__all__ = [
    "CLEANUP_BY_NAME",
    "CLEANUP_RULES",
    "KEEP_FILTERS",
    "CleanupKind",
    "CleanupRule",
    "KeepRule",
    "NameFilter",
    "Stage",
    "candidates_for_printed",
    "cleanup_rule_for",
    "in_system_map",
    "in_text_ranges",
    "keep_rule_for",
    "kept",
    "parse_kernel_version",
    "passes_name_filters",
    "printed_name",
    "rules_in_order",
    "stored_symbol_count",
]


class Stage(enum.Enum):
    """Which build step drops a symbol: ``System.map`` is the output of the first."""

    MKSYSMAP = "mksysmap"
    KALLSYMS = "kallsyms"


@dataclass(frozen=True, slots=True, kw_only=True)
class NameFilter:
    """One row of the keep rules: symbols matching it are dropped."""

    how: str  # "type", "exact", "prefix", "suffix", "contains", "weak-contains" (W symbols)
    values: tuple[str, ...]
    origin: str
    stage: Stage = Stage.KALLSYMS


# scripts/mksysmap (6.1): `$NM -n $1 | grep -v -e ' [aNUw] ' -e ' \$' -e ' \.L' -e ' __crc_'
# -e ' __kstrtab_' -e ' __kstrtabns_' -e ' L0$'`; its output is kallsyms' input since 6.1
# (scripts/link-vmlinux.sh kallsyms_step: `mksysmap ${kallsyms_vmlinux} ${kallsyms_vmlinux}.syms`).
# scripts/kallsyms.c (6.1) is_ignored_symbol() drops the rest.
KEEP_FILTERS: tuple[NameFilter, ...] = (
    NameFilter(
        how="type",
        values=("a", "N", "U", "w"),
        origin="scripts/mksysmap 6.1: grep -v ' [aNUw] '",
        stage=Stage.MKSYSMAP,
    ),
    NameFilter(
        how="prefix",
        values=("$", ".L", "__crc_", "__kstrtab_", "__kstrtabns_"),
        origin="scripts/mksysmap 6.1: ' \\$', ' \\.L', ' __crc_', ' __kstrtab_', ' __kstrtabns_'",
        stage=Stage.MKSYSMAP,
    ),
    NameFilter(
        how="exact", values=("L0",), origin="scripts/mksysmap 6.1: ' L0$'", stage=Stage.MKSYSMAP
    ),
    # Only gcc LTO makes weak source-file symbols (`W head64.c.552cf5a6`); no other build has
    # a W symbol containing ".c.", so the row is harmless where the series is not applied.
    NameFilter(
        how="weak-contains",
        values=(".c.",),
        origin="scripts/mksysmap with the out-of-tree gcc LTO series (Kleen, Liska, Slaby, 2022) "
        "patch 38/46 'Kbuild, lto: don't include weak source file symbols in System.map': "
        "grep -v ' W .*\\.c\\.'",
        stage=Stage.MKSYSMAP,
    ),
    NameFilter(
        how="exact",
        values=(
            "kallsyms_addresses",
            "kallsyms_offsets",
            "kallsyms_relative_base",
            "kallsyms_num_syms",
            "kallsyms_names",
            "kallsyms_markers",
            "kallsyms_token_table",
            "kallsyms_token_index",
            "kallsyms_seqs_of_names",
            "_SDA_BASE_",
            "_SDA2_BASE_",
        ),
        origin="scripts/kallsyms.c 6.1 is_ignored_symbol(): ignored_symbols[] "
        "(vary between passes)",
    ),
    NameFilter(
        how="prefix",
        values=(
            "__efistub_",
            "__kvm_nvhe_$",
            "__kvm_nvhe_.L",
            "__AArch64ADRPThunk_",
            "__ARMV5PILongThunk_",
            "__ARMV7PILongThunk_",
            "__ThumbV7PILongThunk_",
            "__LA25Thunk_",
            "__microLA25Thunk_",
            "__kcfi_typeid_",
        ),
        origin="scripts/kallsyms.c 6.1 is_ignored_symbol(): ignored_prefixes[]",
    ),
    NameFilter(
        how="suffix",
        values=("_from_arm", "_from_thumb", "_veneer"),
        origin="scripts/kallsyms.c 6.1 is_ignored_symbol(): ignored_suffixes[]",
    ),
    NameFilter(
        how="contains",
        values=(".long_branch.", ".plt_branch."),
        origin="scripts/kallsyms.c 6.1 is_ignored_symbol(): ignored_matches[] (ppc stubs)",
    ),
    NameFilter(
        how="type",
        values=("u", "n"),
        origin="scripts/kallsyms.c 6.1 is_ignored_symbol(): 'U','u','N','n'",
    ),
)
# scripts/kallsyms.c 6.1 is_ignored_symbol(): absolute symbols are dropped except these.
KEPT_ABSOLUTE = frozenset(
    {"__kernel_syscall_via_break", "__kernel_syscall_via_epc", "__kernel_sigtramp", "__gp"}
)

_MAP_TYPES = frozenset(
    t for f in KEEP_FILTERS if f.stage is Stage.MKSYSMAP and f.how == "type" for t in f.values
)
_MAP_EXACT = frozenset(
    v for f in KEEP_FILTERS if f.stage is Stage.MKSYSMAP and f.how == "exact" for v in f.values
)
_MAP_PREFIX = tuple(
    v for f in KEEP_FILTERS if f.stage is Stage.MKSYSMAP and f.how == "prefix" for v in f.values
)
_DROP_TYPES = frozenset(t for f in KEEP_FILTERS if f.how == "type" for t in f.values)
_DROP_EXACT = frozenset(v for f in KEEP_FILTERS if f.how == "exact" for v in f.values)
_DROP_PREFIX = tuple(v for f in KEEP_FILTERS if f.how == "prefix" for v in f.values)
_DROP_SUFFIX = tuple(v for f in KEEP_FILTERS if f.how == "suffix" for v in f.values)
_DROP_CONTAINS = tuple(v for f in KEEP_FILTERS if f.how == "contains" for v in f.values)
_WEAK_CONTAINS = tuple(v for f in KEEP_FILTERS if f.how == "weak-contains" for v in f.values)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepRule:
    """How one kernel build chose its kallsyms symbols."""

    all_symbols: bool  # CONFIG_KALLSYMS_ALL
    text_ranges: tuple[tuple[int, int], ...]  # inclusive [start, end] as scripts/kallsyms.c
    # The end the kernel uses for the last symbol (get_symbol_pos: _end with KALLSYMS_ALL,
    # else _etext; _einittext for init text, which is never last in practice).
    last_symbol_end: int


def passes_name_filters(name: str, nm_type: str) -> bool:
    """True when no row of :data:`KEEP_FILTERS` drops the symbol (the text ranges aside)."""
    if nm_type in _DROP_TYPES or (nm_type == "A" and name not in KEPT_ABSOLUTE):
        return False
    return not (
        name in _DROP_EXACT
        or name.startswith(_DROP_PREFIX)
        or name.endswith(_DROP_SUFFIX)
        # every ignored_matches[] entry has a dot: skip the scan for the many names without one
        or ("." in name and any(c in name for c in _DROP_CONTAINS))
        or (nm_type == "W" and any(c in name for c in _WEAK_CONTAINS))
    )


def in_text_ranges(rule: KeepRule, name: str, link_address: int) -> bool:
    """scripts/kallsyms.c symbol_valid() without --all-symbols: inside a text range, and not
    sitting exactly on _etext/_einittext unless it is that symbol (it moves between passes)."""
    for start, end in rule.text_ranges:
        if start <= link_address <= end:
            return link_address != end or name in ("_etext", "_einittext")
    return False


def kept(rule: KeepRule, name: str, nm_type: str, link_address: int) -> bool:
    """True when kallsyms keeps this symbol under ``rule``."""
    return passes_name_filters(name, nm_type) and (
        rule.all_symbols or in_text_ranges(rule, name, link_address)
    )


def kallsyms_order(name: str, nm_type: str) -> tuple[bool, bool, int, str]:
    """Where scripts/kallsyms.c compare_symbols() puts a symbol among others at its address
    (the lowest comes first, and is the one an oops prints): non-weak before weak, names that
    do not look linker-script-provided first, fewer leading underscores, then input order:
    ``nm -n`` lists equal addresses by name (GNU nm and llvm-nm alike; every System.map of the
    corpus kernels shows it)."""
    return (
        nm_type in "wW",
        _looks_linker_script_provided(name),
        len(name) - len(name.lstrip("_")),
        name,
    )


def _looks_linker_script_provided(name: str) -> bool:
    # may_be_linker_script_provide_symbol(): `__start_X`, `__stop_X`, `__end_X`, `__X_start`,
    # `__X_end`, for names of 8 characters and more.
    if len(name) < 8 or not name.startswith("__"):
        return False
    return name.startswith(("__start_", "__stop_", "__end_")) or name.endswith(("_start", "_end"))


def in_system_map(name: str, nm_type: str) -> bool:
    """True when ``scripts/mksysmap`` lists this symbol in ``System.map`` (the rows of
    :data:`KEEP_FILTERS` whose stage is :attr:`Stage.MKSYSMAP`; scripts/kallsyms drops more)."""
    return not (
        nm_type in _MAP_TYPES
        or name in _MAP_EXACT
        or name.startswith(_MAP_PREFIX)
        or (nm_type == "W" and any(c in name for c in _WEAK_CONTAINS))
    )


class _ImageBytes(Protocol):
    """What the stored symbol count is read from: the image's bytes at a link address."""

    @property
    def little_endian(self) -> bool: ...

    def read(self, link_address: int, length: int) -> bytes: ...


class _SymbolColumns(Protocol):
    @property
    def names(self) -> Sequence[str]: ...

    @property
    def link_addresses(self) -> Sequence[int]: ...

    @property
    def nm_types(self) -> Sequence[str]: ...

    def is_listed(self, index: int) -> bool: ...

    def address_of(self, name: str) -> int | None: ...

    @property
    def image(self) -> _ImageBytes: ...


def _address(columns: _SymbolColumns, name: str) -> int | None:
    for index, symbol_name in enumerate(columns.names):
        if symbol_name == name:
            return columns.link_addresses[index]
    return None


def keep_rule_for(
    columns: _SymbolColumns,
    all_symbols: bool | None = None,
    filtered: Sequence[int] | None = None,
) -> KeepRule:
    """The keep rule of the kernel these symbols come from.

    ``CONFIG_KALLSYMS_ALL`` is read from the image itself when not given: the kernel stores the
    number of symbols it kept in ``kallsyms_num_syms``; of the two possible rules, the one that
    keeps exactly that many is the one the build used. Without that symbol (a module, a test
    image) the broader rule is used. ``filtered`` (indexes that pass the name filters) saves
    running those filters again.
    """
    wanted = {"_stext", "_etext", "_sinittext", "_einittext", "_end", "kallsyms_num_syms"}
    found: dict[str, int] = {}
    for index, name in enumerate(columns.names):
        if name in wanted and name not in found and columns.nm_types[index] not in "Uw":
            found[name] = columns.link_addresses[index]
    ranges = tuple(
        (found[start], found[end])
        for start, end in (("_stext", "_etext"), ("_sinittext", "_einittext"))
        if start in found and end in found
    )
    if all_symbols is None:
        all_symbols = _detect_all_symbols(columns, found, ranges, filtered)
    last = found.get("_end", 0) if all_symbols else found.get("_etext", 0)
    return KeepRule(all_symbols=all_symbols, text_ranges=ranges, last_symbol_end=last)


def _detect_all_symbols(
    columns: _SymbolColumns,
    found: dict[str, int],
    ranges: tuple[tuple[int, int], ...],
    filtered: Sequence[int] | None,
) -> bool:
    if not ranges:
        return True
    stored = _stored_symbol_count(columns, found.get("kallsyms_num_syms"))
    if stored is None:
        return True
    names, types, addresses = columns.names, columns.nm_types, columns.link_addresses
    if filtered is None:
        filtered = [
            i
            for i, name in enumerate(names)
            if columns.is_listed(i) and passes_name_filters(name, types[i])
        ]
    if len(filtered) == stored:
        return True
    # Without CONFIG_KALLSYMS_ALL the text ranges cut the list; if that count is not the stored
    # one either, the broader rule is the safer guess.
    rule = KeepRule(all_symbols=False, text_ranges=ranges, last_symbol_end=0)
    return sum(1 for i in filtered if in_text_ranges(rule, names[i], addresses[i])) != stored


def stored_symbol_count(columns: _SymbolColumns) -> int | None:
    """How many symbols the build's kallsyms table holds: the value of ``kallsyms_num_syms``
    (scripts/kallsyms.c 6.1 write_src(): ``.long table_cnt``), None when the image has none."""
    return _stored_symbol_count(columns, columns.address_of("kallsyms_num_syms"))


def _stored_symbol_count(columns: _SymbolColumns, link_address: int | None) -> int | None:
    if link_address is None:
        return None
    image = columns.image
    try:
        raw = image.read(link_address, 4)
    except InputError:  # the symbol lies in no section with bytes (.bss, or a damaged image)
        return None
    if len(raw) != 4:
        return None
    return int.from_bytes(raw, "little" if image.little_endian else "big")
