"""What a cleanup rule does to the names of the symbols kallsyms keeps.

Under a rule every kept symbol gets a *printed name* (kernel/kallsyms.c
``cleanup_symbol_name()``); a printed name standing for kept symbols at two or more addresses
is *ambiguous*. Its frames stay decodable when each of those addresses has its own kallsyms
size (the ``/0xSIZE`` of ``name+0xOFF/0xSIZE``); when two share a size the name is
*unresolvable* from the oops line, and any lookup by name (``kallsyms_lookup_name()``, which
kprobes, livepatch and BPF attach use, compares cleaned names in 6.1 and returns the first
match) may pick the wrong one. Symbols at one address under several names (aliases) are one
place, not an ambiguity.

A kept symbol is *lossy* when the rule cuts off a clone or split suffix (``.cold``, ``.part.N``,
``.constprop.N``, ``.isra.N``, ...): the printed name no longer says the code is not the
function itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ltosyms.elf.symtab import Symbol, SymbolTable
from ltosyms.kallsyms_check.records import (
    AmbiguousName,
    GroupMember,
    LossyName,
    NameAnalysis,
    RuleSummary,
)
from ltosyms.names.kallsyms import CleanupKind, CleanupRule, printed_name
from ltosyms.names.suffixes import SuffixKind, parse_name

# The source files of some symbols, in the same order: one call per report, so a DWARF-backed
# implementation can visit each unit once.
FilesOf = Callable[[Sequence[Symbol]], Sequence[str | None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Kept:
    """The kept symbols as parallel columns (the hot loop of every rule runs over these)."""

    indexes: list[int]
    names: list[str]
    addresses: list[int]
    sizes: list[int]
    is_text: list[bool]


def kept_columns(table: SymbolTable) -> _Kept:
    indexes = sorted(table.kept_indexes, key=lambda i: (table.link_addresses[i], i))
    letters = table.nm_types
    return _Kept(
        indexes=indexes,
        names=[table.names[i] for i in indexes],
        addresses=[table.link_addresses[i] for i in indexes],
        sizes=[table.kallsyms_sizes[i] or 0 for i in indexes],
        # A weak definition prints `W` whatever it is; only those need the full record.
        is_text=[
            letters[i] in "Tt" or (letters[i] == "W" and table.symbol(i).is_function)
            for i in indexes
        ],
    )


def summarize(kept: _Kept, rule: CleanupRule) -> RuleSummary:
    """The numbers of one rule, without building a record per symbol."""
    groups, printed = _groups(kept, rule)
    return _summary(kept, rule, groups, printed)


def analyse(
    table: SymbolTable, kept: _Kept, rule: CleanupRule, files_of: FilesOf | None = None
) -> NameAnalysis:
    """One rule in detail: every ambiguous group and every lossy name. ``files_of`` is asked
    once, for the members of groups that name a function (files cost DWARF lookups)."""
    groups, printed = _groups(kept, rule)
    summary = _summary(kept, rule, groups, printed)
    ambiguous_positions = [
        (name, positions) for name, positions in groups.items() if _is_ambiguous(kept, positions)
    ]
    wanting_files = [
        p
        for _, positions in ambiguous_positions
        if any(kept.is_text[q] for q in positions)
        for p in positions
    ]
    files: dict[int, str | None] = {}
    if files_of is not None and wanting_files:
        answers = files_of([table.symbol(kept.indexes[p]) for p in wanting_files])
        files = dict(zip(wanting_files, answers, strict=True))

    ambiguous = []
    for name, positions in ambiguous_positions:
        size_of_address = {kept.addresses[p]: kept.sizes[p] for p in positions}
        size_count = Counter(size_of_address.values())
        members = tuple(
            GroupMember(
                symbol=table.symbol(kept.indexes[p]),
                file=files.get(p),
                size_unique=size_count[kept.sizes[p]] == 1,
            )
            for p in positions
        )
        ambiguous.append(
            AmbiguousName(
                printed_name=name,
                members=members,
                size_separates=len(size_count) == len(size_of_address),
                made_by_cleanup=_made_by_cleanup(kept, name, positions),
                is_text=any(kept.is_text[p] for p in positions),
            )
        )
    ambiguous.sort(
        key=lambda g: (
            not g.is_text,
            not g.made_by_cleanup,
            g.size_separates,
            -g.addresses,
            g.printed_name,
        )
    )
    lossy = tuple(
        LossyName(
            symbol=table.symbol(kept.indexes[position]),
            printed_name=printed[position],
            removed=removed,
            merged=_is_ambiguous(kept, groups[printed[position]]),
        )
        for position, removed in _lossy(kept, printed)
    )
    return NameAnalysis(summary=summary, ambiguous=tuple(ambiguous), lossy=lossy)


def _groups(kept: _Kept, rule: CleanupRule) -> tuple[dict[str, list[int]], list[str]]:
    if rule.kind is CleanupKind.NONE:
        printed = kept.names
    else:
        printed = [printed_name(name, rule) if "." in name else name for name in kept.names]
    groups: dict[str, list[int]] = {}
    for position, name in enumerate(printed):
        groups.setdefault(name, []).append(position)
    return groups, printed


def _is_ambiguous(kept: _Kept, positions: list[int]) -> bool:
    if len(positions) < 2:
        return False
    first = kept.addresses[positions[0]]
    return any(kept.addresses[p] != first for p in positions)


def _made_by_cleanup(kept: _Kept, printed: str, positions: list[int]) -> bool:
    """The rule made or widened this ambiguity: a lookup of the printed name as an exact ELF
    name would find fewer addresses than the printed name stands for."""
    exact = {kept.addresses[p] for p in positions if kept.names[p] == printed}
    return len(exact) < len({kept.addresses[p] for p in positions})


def removed_clone_kinds(elf_name: str, printed: str) -> tuple[SuffixKind, ...]:
    """The clone/split suffix kinds of ``elf_name`` that lie wholly in the part cut off."""
    parsed = parse_name(elf_name)
    cut = len(printed)
    position = len(parsed.base)
    kinds: list[SuffixKind] = []
    for part in parsed.suffixes:
        if position >= cut and part.kind.is_clone and part.kind not in kinds:
            kinds.append(part.kind)
        position += len(part.text)
    return tuple(kinds)


def _lossy(kept: _Kept, printed: list[str]) -> Iterable[tuple[int, tuple[SuffixKind, ...]]]:
    for position, name in enumerate(kept.names):
        shown = printed[position]
        if shown is name or shown == name:
            continue
        removed = removed_clone_kinds(name, shown)
        if removed:
            yield position, removed


def _summary(
    kept: _Kept, rule: CleanupRule, groups: dict[str, list[int]], printed: list[str]
) -> RuleSummary:
    ambiguous = symbols = text = by_cleanup = separated = unresolvable = unresolvable_text = 0
    for name, positions in groups.items():
        if not _is_ambiguous(kept, positions):
            continue
        ambiguous += 1
        symbols += len(positions)
        is_text = any(kept.is_text[p] for p in positions)
        text += is_text
        by_cleanup += _made_by_cleanup(kept, name, positions)
        size_of_address = {kept.addresses[p]: kept.sizes[p] for p in positions}
        if len(set(size_of_address.values())) == len(size_of_address):
            separated += 1
        else:
            unresolvable += 1
            unresolvable_text += is_text
    kinds: Counter[SuffixKind] = Counter()
    lossy = merged = 0
    for position, removed in _lossy(kept, printed):
        lossy += 1
        kinds.update(removed)
        merged += _is_ambiguous(kept, groups[printed[position]])
    renamed = sum(1 for shown, name in zip(printed, kept.names, strict=True) if shown != name)
    return RuleSummary(
        rule=rule,
        kept_count=len(kept.indexes),
        printed_names=len(groups),
        renamed=renamed,
        ambiguous=ambiguous,
        ambiguous_symbols=symbols,
        ambiguous_text=text,
        made_by_cleanup=by_cleanup,
        size_separated=separated,
        unresolvable=unresolvable,
        unresolvable_text=unresolvable_text,
        lossy=lossy,
        merged=merged,
        lossy_by_kind=tuple(sorted(kinds.items(), key=lambda item: (-item[1], item[0].value))),
    )
