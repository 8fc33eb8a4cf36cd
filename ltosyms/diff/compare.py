"""Compare two builds: open -> symbols (+ DWARF census) -> groups -> match -> classify -> report.

The symbol and size parts need only the symbol tables and section headers (under a second for
a Debian vmlinux). The DWARF part (compilation units for identity, per-directory rollup,
inlined-instance counts) walks all of ``.debug_info`` once per build and is optional.
"""

from __future__ import annotations

import logging
import os
import posixpath
import time
from collections import defaultdict
from collections.abc import Iterable

from ltosyms.diff.classify import classify
from ltosyms.diff.groups import BuildSymbols, build_groups
from ltosyms.diff.match import match_groups
from ltosyms.diff.model import (
    Caller,
    Change,
    ChangeClass,
    ClassTotals,
    DiffReport,
    DirectoryTotals,
    ImageSummary,
    InlineCount,
    SectionClass,
    SymbolGroup,
    SymbolKind,
)
from ltosyms.diff.sections import compare_sections, listed_sections, section_classes
from ltosyms.dwarf import DwarfCensus, take_census
from ltosyms.elf.debug_sections import dwarf_sections
from ltosyms.elf.kernel import LoadedImage, load_vmlinux
from ltosyms.elf.symtab import SymbolTable
from ltosyms.errors import InputError

log = logging.getLogger(__name__)

UNKNOWN_DIRECTORY = "(no DWARF unit)"


def diff_images(
    base_path: str | os.PathLike[str],
    new_path: str | os.PathLike[str],
    *,
    use_dwarf: bool = True,
    directory_depth: int = 2,
) -> DiffReport:
    """Diff two vmlinux files (BASE typically without LTO, NEW with)."""
    base = load_vmlinux(base_path)
    try:
        new = load_vmlinux(new_path)
    except Exception:
        base.image.close()
        raise
    try:
        return diff_loaded(base, new, use_dwarf=use_dwarf, directory_depth=directory_depth)
    finally:
        base.image.close()
        new.image.close()


def diff_loaded(
    base: LoadedImage, new: LoadedImage, *, use_dwarf: bool = True, directory_depth: int = 2
) -> DiffReport:
    notes: list[str] = []
    base_census, base_seconds = _census(base, "BASE", use_dwarf, notes)
    new_census, new_seconds = _census(new, "NEW", use_dwarf, notes)
    if not use_dwarf:
        notes.append(
            "DWARF not read (--no-dwarf): identity from symbol names and STT_FILE "
            "symbols; no inlined-instance counts, no directory rollup"
        )
    base_classes = section_classes(base.image, base.symbols)
    new_classes = section_classes(new.image, new.symbols)
    sections = compare_sections(
        listed_sections(base.image), base_classes, listed_sections(new.image), new_classes
    )
    base_symbols = build_groups(base.image, base.symbols, base_classes, base_census)
    new_symbols = build_groups(new.image, new.symbols, new_classes, new_census)
    pairs = match_groups(base_symbols.groups, new_symbols.groups)
    changes = [
        _change(
            base_group,
            new=new_group,
            base_census=base_census,
            new_census=new_census,
            new_symbols=new.symbols,
            directory_depth=directory_depth,
        )
        for base_group, new_group in pairs
    ]
    changes.sort(key=lambda c: (-abs(c.delta), c.name, c.base.link_address if c.base else 0))
    if new_census is None:
        notes.append(
            "NEW has no DWARF read: dropped functions cannot be told apart; "
            "all are shown as dropped_removed"
        )
    return DiffReport(
        base=_summary(base, base_symbols, base_census is not None, base_seconds),
        new=_summary(new, new_symbols, new_census is not None, new_seconds),
        sections=tuple(sections),
        classes=tuple(_class_totals(sections, base_symbols, new_symbols)),
        changes=tuple(changes),
        directories=tuple(_directories(changes)),
        inline_counts=tuple(_inline_counts(base_census, new_census)),
        notes=tuple(notes),
    )


def _census(
    loaded: LoadedImage, role: str, use_dwarf: bool, notes: list[str]
) -> tuple[DwarfCensus | None, float | None]:
    if not use_dwarf:
        return None, None
    if not loaded.image.has_dwarf():
        notes.append(f"{role} {loaded.image.path} has no DWARF: DWARF parts skipped for it")
        return None, None
    started = time.perf_counter()
    try:
        census = take_census(dwarf_sections(loaded.image))
    except InputError as error:
        notes.append(f"{role} DWARF unusable, skipped: {error}")
        return None, None
    seconds = time.perf_counter() - started
    log.info("%s: DWARF census in %.1f s", loaded.image.path, seconds)
    return census, seconds


def _summary(
    loaded: LoadedImage, symbols: BuildSymbols, has_dwarf: bool, seconds: float | None
) -> ImageSummary:
    functions = sum(1 for g in symbols.groups if g.kind is SymbolKind.FUNCTION)
    return ImageSummary(
        path=str(loaded.image.path),
        build_id=loaded.build_id,
        has_dwarf=has_dwarf,
        functions=functions,
        objects=len(symbols.groups) - functions,
        dwarf_seconds=seconds,
    )


def _inlined(census: DwarfCensus | None, group: SymbolGroup) -> int | None:
    if census is None:
        return None
    record = census.inlined_instances(group.dwarf_name or group.base_name, group.decl_file)
    return record.count if record is not None else 0


def _change(
    base: SymbolGroup | None,
    *,
    new: SymbolGroup | None,
    base_census: DwarfCensus | None,
    new_census: DwarfCensus | None,
    new_symbols: SymbolTable,
    directory_depth: int,
) -> Change:
    group = base or new
    assert group is not None
    inlined_base: int | None = None
    inlined_new: int | None = None
    callers: tuple[Caller, ...] = ()
    if group.kind is SymbolKind.FUNCTION:
        # The identity of the function in each build: its own group if it has one there.
        inlined_base = _inlined(base_census, base or group)
        inlined_new = _inlined(new_census, new or group)
        change_class = classify(base, new, inlined_new)
        if change_class is ChangeClass.DROPPED_INLINED and new_census is not None:
            record = new_census.inlined_instances(
                group.dwarf_name or group.base_name, group.decl_file
            )
            if record is not None:
                callers = tuple(_name_callers(record.callers, new_symbols))
    else:
        change_class = classify(base, new, None)
    return Change(
        kind=group.kind,
        change_class=change_class,
        base=base,
        new=new,
        inlined_count_base=inlined_base,
        inlined_count_new=inlined_new,
        callers_new=callers,
        directory=_directory(
            (base.unit if base else None) or (new.unit if new else None), directory_depth
        ),
    )


def _name_callers(callers: Iterable[tuple[int, int]], symbols: SymbolTable) -> list[Caller]:
    named: dict[str, int] = defaultdict(int)
    for low_pc, count in callers:
        symbol = symbols.function_containing(low_pc) if low_pc >= 0 else None
        named[symbol.name if symbol else f"{low_pc:#x}" if low_pc >= 0 else "?"] += count
    return [
        Caller(name, count)
        for name, count in sorted(named.items(), key=lambda item: (-item[1], item[0]))
    ]


def _directory(unit: str | None, depth: int) -> str:
    if not unit:
        return UNKNOWN_DIRECTORY
    directory = posixpath.dirname(unit)
    if not directory:
        return "."
    return "/".join(directory.split("/")[:depth])


def _class_totals(
    sections: Iterable[object], base: BuildSymbols, new: BuildSymbols
) -> list[ClassTotals]:
    base_size: dict[SectionClass, int] = defaultdict(int)
    new_size: dict[SectionClass, int] = defaultdict(int)
    for row in sections:
        base_size[row.section_class] += row.base_size or 0  # type: ignore[attr-defined]
        new_size[row.section_class] += row.new_size or 0  # type: ignore[attr-defined]
    return [
        ClassTotals(
            section_class=section_class,
            base_size=base_size[section_class],
            new_size=new_size[section_class],
            base_symbol_bytes=base.symbol_bytes.get(section_class, 0),
            new_symbol_bytes=new.symbol_bytes.get(section_class, 0),
        )
        for section_class in SectionClass
        if base_size[section_class] or new_size[section_class]
    ]


def _directories(changes: Iterable[Change]) -> list[DirectoryTotals]:
    sizes: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for change in changes:
        entry = sizes[change.directory or UNKNOWN_DIRECTORY]
        entry[0] += change.base_size
        entry[1] += change.new_size
        if change.kind is SymbolKind.FUNCTION:
            entry[2] += change.base is not None
            entry[3] += change.new is not None
    rows = [DirectoryTotals(directory, *values) for directory, values in sizes.items()]
    rows.sort(key=lambda row: (-abs(row.delta), -row.base_size, row.directory))
    return rows


def _inline_counts(base: DwarfCensus | None, new: DwarfCensus | None) -> list[InlineCount]:
    if base is None or new is None:
        return []
    keys = set(base.inlined) | set(new.inlined)
    rows = []
    for key in keys:
        count_base = base.inlined[key].count if key in base.inlined else 0
        count_new = new.inlined[key].count if key in new.inlined else 0
        if count_base != count_new:
            rows.append(InlineCount(key[0], key[1], count_base, count_new))
    rows.sort(key=lambda row: (-abs(row.delta), row.name, row.decl_file or ""))
    return rows
