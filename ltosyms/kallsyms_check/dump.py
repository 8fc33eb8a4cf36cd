"""Read a ``/proc/kallsyms`` copy or a ``System.map`` and compare it with the vmlinux.

``/proc/kallsyms`` (kernel/kallsyms.c 6.1 ``s_show()``) prints ``%px %c %s`` per symbol and
``\\t[module]`` after module symbols (also ``[bpf]``, ``[__builtin__ftrace]``); it prints the
full ELF names (no cleanup), the runtime addresses (link address + KASLR offset), and zeros for
every address when ``kptr_restrict`` hides them. On x86-64 SMP, per-cpu symbols are absolute
(scripts/kallsyms.c ``--absolute-percpu``): they print type ``A`` with their unrelocated
offset. ``System.map`` is ``nm -n`` output filtered by scripts/mksysmap: link addresses and a
few more symbols than kallsyms keeps.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ltosyms.elf.symtab import Symbol, SymbolTable
from ltosyms.errors import InputError
from ltosyms.kallsyms_check.records import (
    Dump,
    DumpCheck,
    DumpEntry,
    DumpKind,
    MovedSymbol,
    Verdict,
)
from ltosyms.names.kallsyms import in_system_map

_MASK = (1 << 64) - 1
# ADDRESS TYPE NAME, then "\t[module]" for module symbols; names never hold white space.
_LINE = re.compile(r"([0-9a-fA-F]{1,16})\s+(\S)\s+(\S+)(?:\s+\[([^\]\s]+)\])?")
_ABSOLUTE_TYPES = frozenset("Aa")
# Below this share of unique names agreeing on one offset the dump is not a rebuild with a few
# changes but another kernel altogether.
_SAME_BUILD_SHARE = 0.5


def read_dump(path: str | Path, kind: DumpKind) -> Dump:
    """Parse a dump file; lines that are not symbol lines are counted, not fatal."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError as error:
        raise InputError(f"{path}: {error.strerror or error}") from None
    dump = parse_dump(text.splitlines(), str(path), kind)
    if not dump.entries:
        raise InputError(f"{path}: no symbol lines (expected 'ADDRESS TYPE NAME')")
    return dump


def parse_dump(lines: Iterable[str], path: str, kind: DumpKind) -> Dump:
    entries: list[DumpEntry] = []
    skipped = 0
    for line_no, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped:
            continue
        match = _LINE.fullmatch(stripped)
        if match is None:
            skipped += 1
            continue
        address, nm_type, name, module = match.groups()
        entries.append(DumpEntry(int(address, 16), nm_type, name, module, line_no))
    return Dump(path=path, kind=kind, entries=tuple(entries), skipped_lines=skipped)


def expected_symbols(table: SymbolTable, kind: DumpKind) -> list[int]:
    """Indexes of the vmlinux symbols a dump of ``kind`` lists."""
    if kind is DumpKind.KALLSYMS:
        return list(table.kept_indexes)
    return [
        i
        for i in range(len(table))
        if table.is_listed(i) and in_system_map(table.names[i], table.nm_types[i])
    ]


def verify_dump(table: SymbolTable, dump: Dump) -> DumpCheck:
    """Compare ``dump`` with the symbols of ``table`` (see the module docstring)."""
    core = [e for e in dump.entries if e.module is None]
    if not core:
        raise InputError(f"{dump.path}: only module symbols; nothing to compare with the vmlinux")
    expected: dict[str, list[int]] = {}
    for index in expected_symbols(table, dump.kind):
        expected.setdefault(table.names[index], []).append(index)
    listed: dict[str, list[DumpEntry]] = {}
    for entry in core:
        listed.setdefault(entry.name, []).append(entry)
    compared = sum(len(v) for v in expected.values())

    if all(e.runtime_address == 0 for e in core):
        missing, extra = _by_name_only(table, expected, listed)
        comparison = _Comparison(None, 0, 0, compared - len(missing), missing, extra, ())
        reason = (
            "every address is zero (kptr_restrict, or read without CAP_SYSLOG): "
            "only names can be compared"
        )
        return _check(
            dump,
            core=core,
            compared=compared,
            verdict=Verdict.HIDDEN,
            reason=reason,
            comparison=comparison,
        )

    comparison = _compare(table, expected, listed)
    counts = (
        f"{len(comparison.missing)} missing, {len(comparison.extra)} extra, "
        f"{len(comparison.moved)} moved"
    )
    if not (comparison.missing or comparison.extra or comparison.moved):
        verdict = Verdict.MATCH
        shift = comparison.kaslr_offset or 0
        where = f"link address {'-' if shift < 0 else '+'} {abs(shift):#x}"
        reason = f"all {compared} symbols are where the vmlinux puts them ({where})"
    elif comparison.kaslr_offset is None:
        verdict = Verdict.MISMATCH
        reason = f"no symbol name in common with this vmlinux: another kernel ({counts})"
    elif comparison.votes < comparison.voters * _SAME_BUILD_SHARE:
        verdict = Verdict.MISMATCH
        reason = (
            f"only {comparison.votes} of {comparison.voters} unique names agree on one KASLR "
            f"offset: the dump is of another build ({counts})"
        )
        # The most common difference of unrelated layouts is no KASLR offset at all.
        comparison = dataclasses.replace(comparison, kaslr_offset=None)
    else:
        verdict = Verdict.MISMATCH
        reason = f"the dump differs from this vmlinux ({counts})"
    return _check(
        dump,
        core=core,
        compared=compared,
        verdict=verdict,
        reason=reason,
        comparison=comparison,
    )


@dataclass(frozen=True, slots=True)
class _Comparison:
    kaslr_offset: int | None
    votes: int
    voters: int
    matched: int
    missing: tuple[Symbol, ...]
    extra: tuple[DumpEntry, ...]
    moved: tuple[MovedSymbol, ...]


def _check(
    dump: Dump,
    *,
    core: list[DumpEntry],
    compared: int,
    verdict: Verdict,
    reason: str,
    comparison: _Comparison,
) -> DumpCheck:
    return DumpCheck(
        path=dump.path,
        kind=dump.kind,
        verdict=verdict,
        reason=reason,
        kaslr_offset=comparison.kaslr_offset,
        offset_votes=comparison.votes,
        unique_names=comparison.voters,
        vmlinux_entries=len(core),
        module_entries=len(dump.entries) - len(core),
        modules=tuple(sorted({e.module for e in dump.entries if e.module is not None})),
        compared=compared,
        matched=comparison.matched,
        missing=comparison.missing,
        extra=comparison.extra,
        moved=comparison.moved,
        skipped_lines=dump.skipped_lines,
    )


def _compare(
    table: SymbolTable, expected: dict[str, list[int]], listed: dict[str, list[DumpEntry]]
) -> _Comparison:
    """Match the symbols of each name on both sides by address (after the KASLR offset);
    what is left of a name on both sides has moved, the rest is missing or extra."""
    offset, votes, voters = _kaslr_offset(table, expected, listed)
    addresses = table.link_addresses
    matched = 0
    missing: list[Symbol] = []
    extra: list[DumpEntry] = []
    moved: list[MovedSymbol] = []
    for name, indexes in expected.items():
        found = listed.get(name, ())
        # The common case, without the bookkeeping: one symbol, found where expected.
        if (
            len(indexes) == 1
            and len(found) == 1
            and _link_address(found[0], offset) == addresses[indexes[0]]
        ):
            matched += 1
            continue
        unmatched_links = Counter(addresses[i] for i in indexes)
        unmatched_entries: list[DumpEntry] = []
        for entry in found:
            link = _link_address(entry, offset)
            if link is not None and unmatched_links[link] > 0:
                unmatched_links[link] -= 1
                matched += 1
            else:
                unmatched_entries.append(entry)
        left: list[int] = []
        for i in sorted(indexes, key=addresses.__getitem__):
            if unmatched_links[addresses[i]] > 0:
                unmatched_links[addresses[i]] -= 1
                left.append(i)
        unmatched_entries.sort(key=lambda e: e.runtime_address)
        pairs = min(len(left), len(unmatched_entries))
        for i, entry in zip(left[:pairs], unmatched_entries[:pairs], strict=True):
            moved.append(
                MovedSymbol(
                    name=name,
                    link_address=addresses[i],
                    expected_address=_expected(addresses[i], entry, offset),
                    runtime_address=entry.runtime_address,
                )
            )
        missing.extend(table.symbol(i) for i in left[pairs:])
        extra.extend(unmatched_entries[pairs:])
    extra.extend(e for name, found in listed.items() if name not in expected for e in found)
    extra.sort(key=lambda e: e.line_no)
    missing.sort(key=lambda s: (s.link_address, s.index))
    moved.sort(key=lambda m: (m.link_address, m.name))
    return _Comparison(offset, votes, voters, matched, tuple(missing), tuple(extra), tuple(moved))


def _kaslr_offset(
    table: SymbolTable, expected: dict[str, list[int]], listed: dict[str, list[DumpEntry]]
) -> tuple[int | None, int, int]:
    """The most common ``runtime - link`` over names unique on both sides (absolute symbols,
    which KASLR does not move, left out), with its number of votes and of voters."""
    differences: Counter[int] = Counter()
    for name, found in listed.items():
        indexes = expected.get(name)
        if indexes is None or len(indexes) != 1 or len(found) != 1:
            continue
        entry = found[0]
        if entry.nm_type in _ABSOLUTE_TYPES:
            continue
        differences[(entry.runtime_address - table.link_addresses[indexes[0]]) & _MASK] += 1
    if not differences:
        return None, 0, 0
    difference, votes = differences.most_common(1)[0]
    signed = difference - (1 << 64) if difference >> 63 else difference
    return signed, votes, sum(differences.values())


def _link_address(entry: DumpEntry, offset: int | None) -> int | None:
    if entry.nm_type in _ABSOLUTE_TYPES:
        return entry.runtime_address
    if offset is None:
        return None
    return (entry.runtime_address - offset) & _MASK


def _expected(link_address: int, entry: DumpEntry, offset: int | None) -> int:
    if entry.nm_type in _ABSOLUTE_TYPES or offset is None:
        return link_address
    return (link_address + offset) & _MASK


def _by_name_only(
    table: SymbolTable, expected: dict[str, list[int]], listed: dict[str, list[DumpEntry]]
) -> tuple[tuple[Symbol, ...], tuple[DumpEntry, ...]]:
    missing: list[Symbol] = []
    extra: list[DumpEntry] = []
    for name, indexes in expected.items():
        surplus = len(indexes) - len(listed.get(name, ()))
        if surplus > 0:
            missing.extend(table.symbol(i) for i in indexes[-surplus:])
    for name, found in listed.items():
        surplus = len(found) - len(expected.get(name, ()))
        if surplus > 0:
            extra.extend(found[-surplus:])
    missing.sort(key=lambda s: (s.link_address, s.index))
    extra.sort(key=lambda e: e.line_no)
    return tuple(missing), tuple(extra)
