"""Compare two builds: open -> census of each image -> match -> classify -> report.

Each image's census (:mod:`ltosyms.diff.census`) is made once and holds all the diff needs
from it; the comparison itself (:func:`diff_censuses`) reads no file. The symbol and size parts
need only the symbol tables and section headers (under a second for a Debian vmlinux). The
DWARF part (compilation units for identity, per-directory rollup, inlined-instance counts)
walks all of ``.debug_info`` once per build and is optional.
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ltosyms.context import ImageContext
from ltosyms.diff.census import ImageCensus, bulk_records, take_image_census
from ltosyms.diff.classify import classify
from ltosyms.diff.match import Pair, folded_partners, match_groups
from ltosyms.diff.model import (
    Caller,
    Change,
    ChangeClass,
    ClassTotals,
    DiffReport,
    ImageSummary,
    InlineCount,
    SectionClass,
    SectionSize,
    SymbolKind,
    group_unit,
    make_change,
)
from ltosyms.diff.rollup import directory_of, rollups
from ltosyms.diff.sections import compare_sections
from ltosyms.diff.stored import image_census
from ltosyms.elf.image import ImageKind
from ltosyms.elf.kernel import LoadedImage
from ltosyms.errors import InputError
from ltosyms.index import CacheLocation

if TYPE_CHECKING:
    from ltosyms.diff.maintainers import Maintainers


def diff_images(
    base_path: str | os.PathLike[str],
    new_path: str | os.PathLike[str],
    *,
    use_dwarf: bool = True,
    directory_depth: int = 2,
    maintainers: Maintainers | None = None,
    cache: CacheLocation | None = None,
) -> DiffReport:
    """Diff two vmlinux files (BASE typically without LTO, NEW with), or two modules; each
    image's census comes from its index under ``cache`` when it keeps one, and is left there
    otherwise (None: no index)."""
    # One stretch without cyclic collection for both censuses and the comparison: each time
    # collection is enabled again, the next collection of the youngest generation walks every
    # record made while it was off (30 ms for a census of a corpus kernel).
    with bulk_records():
        base, new = image_censuses(base_path, new_path, use_dwarf=use_dwarf, cache=cache)
        return diff_censuses(
            base,
            new,
            directory_depth=directory_depth,
            maintainers=maintainers,
            dwarf_requested=use_dwarf,
        )


def image_censuses(
    base_path: str | os.PathLike[str],
    new_path: str | os.PathLike[str],
    *,
    use_dwarf: bool = True,
    cache: CacheLocation | None = None,
) -> tuple[ImageCensus, ImageCensus]:
    """The censuses of two images a diff compares (:func:`diff_images`' first step), checked
    to be comparable; the files and their indexes are closed again."""
    with bulk_records(), contextlib.ExitStack() as opened:
        base = opened.enter_context(ImageContext.open(base_path, cache=cache))
        new = opened.enter_context(ImageContext.open(new_path, cache=cache))
        check_comparable(
            (base.name, base.image.machine, base.image.kind),
            (new.name, new.image.machine, new.image.kind),
        )
        return image_census(base, use_dwarf=use_dwarf), image_census(new, use_dwarf=use_dwarf)


def diff_loaded(
    base: LoadedImage,
    new: LoadedImage,
    *,
    use_dwarf: bool = True,
    directory_depth: int = 2,
    maintainers: Maintainers | None = None,
) -> DiffReport:
    check_comparable(
        (str(base.image.path), base.image.machine, base.image.kind),
        (str(new.image.path), new.image.machine, new.image.kind),
    )
    return diff_censuses(
        take_image_census(base, use_dwarf=use_dwarf),
        take_image_census(new, use_dwarf=use_dwarf),
        directory_depth=directory_depth,
        maintainers=maintainers,
        dwarf_requested=use_dwarf,
    )


def check_comparable(base: tuple[str, str, ImageKind], new: tuple[str, str, ImageKind]) -> None:
    """:class:`InputError` unless both (path, machine, kind) are of one architecture and both
    vmlinux files or both modules: sizes of different instruction sets or of a module against
    a kernel compare nothing."""
    if base[1] != new[1]:
        raise InputError(
            f"{base[0]} is {base[1]} and {new[0]} is {new[1]}: "
            "a diff compares builds of one architecture"
        )
    if base[2] is not new[2]:
        raise InputError(
            f"{base[0]} is a {base[2].value} and {new[0]} a {new[2].value}: "
            "a diff compares two vmlinux files or two modules"
        )


def diff_censuses(
    base: ImageCensus,
    new: ImageCensus,
    *,
    directory_depth: int = 2,
    maintainers: Maintainers | None = None,
    dwarf_requested: bool = True,
) -> DiffReport:
    """The diff of two image censuses (no file is read)."""
    check_comparable((base.path, base.machine, base.kind), (new.path, new.machine, new.kind))
    with bulk_records():
        return _diff_censuses(base, new, directory_depth, maintainers, dwarf_requested)


def _diff_censuses(
    base: ImageCensus,
    new: ImageCensus,
    directory_depth: int,
    maintainers: Maintainers | None,
    dwarf_requested: bool,
) -> DiffReport:
    notes: list[str] = []
    for role, census in (("BASE", base), ("NEW", new)):
        if census.dwarf_note:
            notes.append(f"{role} {census.dwarf_note}")
    if not dwarf_requested:
        notes.append(
            "DWARF not read (--no-dwarf): identity from symbol names and STT_FILE "
            "symbols; no inlined-instance counts, no directory rollup"
        )
    sections = compare_sections(base.sections, new.sections)
    pairs = match_groups(base.groups, new.groups, base.empty_groups, new.empty_groups)
    unpaired_base = [b for b, n in pairs if n is None and b is not None]
    unpaired_new = [n for b, n in pairs if b is None and n is not None]
    folded = folded_partners(unpaired_base, new.groups)
    folded.update(folded_partners(unpaired_new, base.groups))
    changes = _changes(pairs, base, new, folded, directory_depth)
    if not new.has_dwarf:
        notes.append(
            "NEW has no DWARF read: dropped functions cannot be told apart; "
            "all are shown as dropped_removed"
        )
    directories, tree, subsystems = rollups(changes, directory_depth, maintainers)
    return DiffReport(
        base=_summary(base),
        new=_summary(new),
        sections=tuple(sections),
        classes=tuple(_class_totals(sections, base, new)),
        changes=tuple(changes),
        directories=tuple(directories),
        inline_counts=tuple(_inline_counts(base, new)),
        notes=tuple(notes),
        directory_depth=directory_depth,
        directory_tree=tuple(tree),
        subsystems=tuple(subsystems),
    )


def _summary(census: ImageCensus) -> ImageSummary:
    # One pass over the groups for the three numbers (census.function_bytes and object_bytes
    # are a pass each).
    function = SymbolKind.FUNCTION
    functions = function_bytes = object_bytes = 0
    for group in census.groups:
        if group.kind is function:
            functions += 1
            function_bytes += group.size
        else:
            object_bytes += group.size
    return ImageSummary(
        path=census.path,
        build_id=census.build_id,
        has_dwarf=census.has_dwarf,
        functions=functions,
        objects=len(census.groups) - functions,
        dwarf_seconds=census.dwarf_seconds,
        machine=census.machine,
        function_bytes=function_bytes,
        object_bytes=object_bytes,
    )


def _changes(
    pairs: Iterable[Pair],
    base: ImageCensus,
    new: ImageCensus,
    folded: dict[int, str],
    directory_depth: int,
) -> list[Change]:
    """One classified change per pair, in report order: largest effect first, then by name and
    BASE address. One loop with the lookups spelled out rather than calls per pair (each call
    costs 20,000 times per diff of the corpus kernels): the inlined counts are
    :meth:`ImageCensus.inlined_count`'s, asked of the censuses' tables directly, a pair with
    the same names is classified by size as :func:`classify` would, and each change's place in
    the report is worked out as it is made."""
    function = SymbolKind.FUNCTION
    dropped_inlined = ChangeClass.DROPPED_INLINED
    grown, shrunk, unchanged = ChangeClass.GROWN, ChangeClass.SHRUNK, ChangeClass.UNCHANGED
    base_count, new_count = base.inlined.count_for, new.inlined.count_for
    base_dwarf, new_dwarf = base.has_dwarf, new.has_dwarf
    directories: dict[str | None, str] = {}  # by unit: a few thousand of them
    changes = []
    order: list[tuple[int, str, int]] = []  # (-|delta|, name, BASE address) of each change
    for base_group, new_group in pairs:
        group = base_group or new_group
        assert group is not None
        inlined_base: int | None = None
        inlined_new: int | None = None
        callers: tuple[Caller, ...] = ()
        if group.kind is function:
            # The identity of the function in each build: its own group if it has one there.
            if base_dwarf:
                identity = base_group or group
                inlined_base = base_count(
                    identity.dwarf_name or identity.base_name, identity.decl_file
                )
            if new_dwarf:
                identity = new_group or group
                inlined_new = new_count(
                    identity.dwarf_name or identity.base_name, identity.decl_file
                )
        folded_with = None
        if base_group is not None and new_group is not None:
            delta = new_group.size - base_group.size
            if base_group.names == new_group.names:  # most pairs: nothing renamed or cloned
                change_class = grown if delta > 0 else shrunk if delta < 0 else unchanged
            else:
                change_class = classify(base_group, new_group, inlined_new, inlined_base)
            order.append((-abs(delta), base_group.names[0], base_group.link_address))
            unit = base_group.unit or new_group.unit  # group_unit() spelled out
        else:
            change_class = classify(base_group, new_group, inlined_new, inlined_base)
            if change_class is dropped_inlined:
                record = new.inlined_instances(group.dwarf_name or group.base_name, group.decl_file)
                if record is not None:
                    callers = tuple(_name_callers(record.callers, new))
            order.append(
                (-group.size, group.names[0], group.link_address if base_group is not None else 0)
            )
            unit = group_unit(base_group, new_group)
            # Only a group one build has may be folded into another (folded_partners).
            folded_with = folded.get(id(group))
            if folded_with is not None:
                change_class = ChangeClass.FOLDED
        directory = directories.get(unit)
        if directory is None:
            directory = directories[unit] = directory_of(unit, directory_depth)
        changes.append(
            make_change(
                kind=group.kind,
                change_class=change_class,
                base=base_group,
                new=new_group,
                inlined_count_base=inlined_base,
                inlined_count_new=inlined_new,
                callers_new=callers,
                directory=directory,
                folded_with=folded_with,
            )
        )
    return [changes[i] for i in sorted(range(len(changes)), key=order.__getitem__)]


def _name_callers(callers: Iterable[tuple[int, int]], census: ImageCensus) -> list[Caller]:
    named: dict[str, int] = defaultdict(int)
    for low_pc, count in callers:
        named[census.function_name_at(low_pc)] += count
    return [
        Caller(name=name, count=count)
        for name, count in sorted(named.items(), key=lambda item: (-item[1], item[0]))
    ]


def _class_totals(
    sections: Sequence[SectionSize], base: ImageCensus, new: ImageCensus
) -> list[ClassTotals]:
    """Bytes per section class, each build's sections under their own class."""
    base_size: dict[SectionClass, int] = defaultdict(int)
    new_size: dict[SectionClass, int] = defaultdict(int)
    for row in sections:
        if row.base_class is not None:
            base_size[row.base_class] += row.base_size or 0
        if row.new_class is not None:
            new_size[row.new_class] += row.new_size or 0
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


def _inline_counts(base: ImageCensus, new: ImageCensus) -> list[InlineCount]:
    if not base.has_dwarf or not new.has_dwarf:
        return []
    rows = []
    # Each function of either build once: BASE's with NEW's count, then those only NEW has.
    base_counts, new_counts = base.inlined.counts, new.inlined.counts
    for (name, decl_file), count in base_counts.items():
        count_new = new_counts.get((name, decl_file), 0)
        if count != count_new:
            rows.append(
                InlineCount(name=name, decl_file=decl_file, count_base=count, count_new=count_new)
            )
    for (name, decl_file), count in new_counts.items():
        if count and (name, decl_file) not in base_counts:
            rows.append(InlineCount(name=name, decl_file=decl_file, count_base=0, count_new=count))
    rows.sort(key=lambda row: (-abs(row.delta), row.name, row.decl_file or ""))
    return rows
