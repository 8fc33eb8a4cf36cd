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
import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ltosyms.elf.symtab import Symbol, SymbolTable
from ltosyms.errors import InputError
from ltosyms.kallsyms_check.arch import dump_machine
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
        entries.append(
            DumpEntry(
                runtime_address=int(address, 16),
                nm_type=nm_type,
                name=name,
                module=module,
                line_no=line_no,
            )
        )
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
    machine, evidence = dump_machine(listed)
    hidden = all(e.runtime_address == 0 for e in core)
    check = functools.partial(
        _check, dump, core=core, compared=compared, hidden=hidden, machine=machine
    )

    if hidden:
        missing, extra = _by_name_only(table, expected, listed)
        comparison = _Comparison(
            kaslr_offset=None,
            votes=0,
            voters=0,
            matched=compared - len(missing),
            missing=missing,
            extra=extra,
            moved=(),
        )
        why = "every address is zero (kptr_restrict, or read without CAP_SYSLOG)"
        if not (missing or extra):
            reason = f"{why}: the names are the vmlinux's, all {compared} of them"
            return check(verdict=Verdict.HIDDEN, reason=reason, comparison=comparison)
        if extra:
            reason = (
                f"{why}; by names alone: {len(extra)} names the vmlinux does not have "
                f"({len(missing)} missing): another kernel"
            )
        else:
            reason = (
                f"{why}; by names alone: every name is the vmlinux's, but {len(missing)} of "
                f"its {compared} symbols are not listed (a partial copy?)"
            )
        verdict = Verdict.MISMATCH
    else:
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
                f"only {comparison.votes} of {comparison.voters} unique names agree on one "
                f"KASLR offset: the dump is of another build ({counts})"
            )
            # The most common difference of unrelated layouts is no KASLR offset at all.
            comparison = dataclasses.replace(comparison, kaslr_offset=None)
        else:
            verdict = Verdict.MISMATCH
            reason = f"the dump differs from this vmlinux ({counts})"
    if machine is not None and machine != table.machine:
        verdict = Verdict.MISMATCH
        reason = (
            f"architecture mismatch: the dump is of an {machine} kernel ({evidence} system "
            f"call wrappers of {machine}), the vmlinux is {table.machine}"
        )
    return check(verdict=verdict, reason=reason, comparison=comparison)


@dataclass(frozen=True, slots=True, kw_only=True)
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
    hidden: bool,
    machine: str | None,
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
        addresses_hidden=hidden,
        dump_machine=machine,
    )


def per_cpu_range(table: SymbolTable) -> tuple[int, int] | None:
    """[__per_cpu_start, __per_cpu_end] when kallsyms makes per-cpu symbols absolute: an
    x86-64 SMP kernel links .data..percpu at 0 (arch/x86/kernel/vmlinux.lds.S PERCPU_VADDR)
    and scripts/kallsyms.c 6.1 make_percpus_absolute() keeps every symbol in that range,
    both ends included (symbol_in_range()), at its link address."""
    start = table.address_of("__per_cpu_start")
    end = table.address_of("__per_cpu_end")
    if table.machine != "x86_64" or start != 0 or end is None:
        return None
    return (start, end)


def _compare(
    table: SymbolTable, expected: dict[str, list[int]], listed: dict[str, list[DumpEntry]]
) -> _Comparison:
    """Match the symbols of each name on both sides by address (after the KASLR offset, which
    per-cpu symbols do not take); what is left of a name on both sides has moved, the rest is
    missing or extra."""
    per_cpu = per_cpu_range(table)
    addresses = table.link_addresses

    def unmoved(index: int) -> bool:
        return per_cpu is not None and per_cpu[0] <= addresses[index] <= per_cpu[1]

    offset, votes, voters = _kaslr_offset(table, expected, listed, unmoved)
    matched = 0
    missing: list[Symbol] = []
    extra: list[DumpEntry] = []
    moved: list[MovedSymbol] = []
    for name, indexes in expected.items():
        found = listed.get(name, ())
        still = any(unmoved(i) for i in indexes)
        # The common case, without the bookkeeping: one symbol, found where expected.
        if (
            len(indexes) == 1
            and len(found) == 1
            and addresses[indexes[0]] in _link_addresses(found[0], offset, still)
        ):
            matched += 1
            continue
        unmatched_links = Counter(addresses[i] for i in indexes)
        unmatched_entries: list[DumpEntry] = []
        for entry in found:
            link = next(
                (a for a in _link_addresses(entry, offset, still) if unmatched_links[a] > 0),
                None,
            )
            if link is not None:
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
            absolute = unmoved(i) or entry.nm_type in _ABSOLUTE_TYPES
            shift = 0 if absolute or offset is None else offset
            moved.append(
                MovedSymbol(
                    name=name,
                    link_address=addresses[i],
                    expected_address=(addresses[i] + shift) & _MASK,
                    runtime_address=entry.runtime_address,
                )
            )
        missing.extend(table.symbol(i) for i in left[pairs:])
        extra.extend(unmatched_entries[pairs:])
    extra.extend(e for name, found in listed.items() if name not in expected for e in found)
    extra.sort(key=lambda e: e.line_no)
    missing.sort(key=lambda s: (s.link_address, s.index))
    moved.sort(key=lambda m: (m.link_address, m.name))
    return _Comparison(
        kaslr_offset=offset,
        votes=votes,
        voters=voters,
        matched=matched,
        missing=tuple(missing),
        extra=tuple(extra),
        moved=tuple(moved),
    )


def _kaslr_offset(
    table: SymbolTable,
    expected: dict[str, list[int]],
    listed: dict[str, list[DumpEntry]],
    unmoved: Callable[[int], bool],
) -> tuple[int | None, int, int]:
    """The most common ``runtime - link`` over names unique on both sides (absolute and
    per-cpu symbols, which KASLR does not move, left out), with its number of votes and of
    voters."""
    differences: Counter[int] = Counter()
    for name, found in listed.items():
        indexes = expected.get(name)
        if indexes is None or len(indexes) != 1 or len(found) != 1:
            continue
        entry = found[0]
        if entry.nm_type in _ABSOLUTE_TYPES or unmoved(indexes[0]):
            continue
        differences[(entry.runtime_address - table.link_addresses[indexes[0]]) & _MASK] += 1
    if not differences:
        return None, 0, 0
    difference, votes = differences.most_common(1)[0]
    signed = difference - (1 << 64) if difference >> 63 else difference
    return signed, votes, sum(differences.values())


def _link_addresses(entry: DumpEntry, offset: int | None, unmoved: bool) -> tuple[int, ...]:
    """The link addresses a dump entry can stand for: its address less the KASLR offset, or
    its address itself for an absolute entry or a name whose symbols are per-cpu."""
    shifted = (entry.runtime_address - offset) & _MASK if offset is not None else None
    if entry.nm_type in _ABSOLUTE_TYPES or unmoved:
        return (entry.runtime_address,) if shifted is None else (entry.runtime_address, shifted)
    return () if shifted is None else (shifted,)


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
