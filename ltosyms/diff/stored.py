"""The census as the index keeps it: plain columns
(:class:`~ltosyms.index.census_codec.CensusColumns`; the persistence layer sits below the diff
and knows none of its records), made from an :class:`ImageCensus` and back; and what
``ltosyms index`` runs to keep an image's census.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

from ltosyms.diff.census import ImageCensus, InlinedFunctions, bulk_records, take_image_census
from ltosyms.diff.model import (
    EmptyGroups,
    ListedSection,
    SectionClass,
    SymbolGroup,
    SymbolKind,
    new_group,
)
from ltosyms.diff.sections import layout_of
from ltosyms.elf.image import ImageKind, KernelImage
from ltosyms.elf.kernel import LoadedImage, require_kernel
from ltosyms.errors import CacheError
from ltosyms.index import StoredValueError, kinds
from ltosyms.index.census_codec import CensusColumns, GroupColumns
from ltosyms.index.encoding import cut_runs

if TYPE_CHECKING:
    from ltosyms.context import ImageContext

log = logging.getLogger(__name__)

_CLASSES = tuple(SectionClass)
_POSITION = {section_class: position for position, section_class in enumerate(_CLASSES)}
_KINDS = (SymbolKind.OBJECT, SymbolKind.FUNCTION)
T = TypeVar("T")


class UnknownStoredCensus(CacheError):
    """A stored census that names section classes this version does not have."""


def image_census(context: ImageContext, *, use_dwarf: bool = True) -> ImageCensus:
    """The census of ``context``'s image: the one its index keeps, else taken (the symbol
    table read, a vmlinux checked to be one) and queued for the index to keep."""
    memo = context.memo(kinds.DIFF_CENSUS)
    key = census_key(context.image, use_dwarf)
    if memo is not None:
        with bulk_records():
            columns = memo.get(key)
            try:
                if columns is not None:
                    census = census_from_columns(columns, context.name)
                    log.info("%s: diff census from the index", context.name)
                    return census
            except UnknownStoredCensus as error:
                log.warning("%s: %s; it is taken again", context.name, error)
    # The symbol table of this file, not the one its index keeps: that one is keyed by the
    # build id alone, and a copy stripped by objcopy (same build id) has another .symtab,
    # which the groups read raw next to it.
    from ltosyms.elf.symtab import SymbolTable  # on first use: see ltosyms.elf

    loaded = LoadedImage(image=context.image, symbols=SymbolTable(context.image))
    if not context.image.is_module:
        require_kernel(context.image, loaded.symbols)
    census = take_image_census(loaded, use_dwarf=use_dwarf)
    if memo is not None and census.dwarf_note is None:  # one with a note is not kept
        memo.put(key, census_columns(census))
    return census


def census_key(image: KernelImage, use_dwarf: bool) -> tuple[bool, str]:
    """The key of ``image``'s census: whether DWARF was read, and the layout of its sections."""
    return (use_dwarf, layout_of(image))


def census_columns(census: ImageCensus) -> CensusColumns:
    """``census`` as the index keeps it. :class:`StoredValueError` for a census with a note:
    the note names the file (its path, its DWARF error), and such a census is made again as
    cheaply as it was made (no DWARF was read)."""
    if census.dwarf_note is not None:
        raise StoredValueError("a census with a note is not kept")
    names, decl_files, counts, caller_counts, caller_low_pcs, caller_instances = (
        census.inlined.columns()
    )
    return CensusColumns(
        build_id=census.build_id,
        machine=census.machine,
        kind=census.kind.value,
        has_dwarf=census.has_dwarf,
        dwarf_seconds=census.dwarf_seconds,
        class_names=tuple(section_class.value for section_class in _CLASSES),
        sections=tuple((s.name, s.size, _POSITION[s.section_class]) for s in census.sections),
        symbol_bytes=tuple((_POSITION[c], size) for c, size in census.symbol_bytes.items()),
        groups=_group_columns(census.groups),
        empty_groups=_group_columns(tuple(census.empty_groups)),
        inlined_names=names,
        inlined_decl_files=decl_files,
        inlined_counts=counts,
        inlined_caller_counts=caller_counts,
        inlined_caller_low_pcs=caller_low_pcs,
        inlined_caller_instances=caller_instances,
    )


def _group_columns(groups: Sequence[SymbolGroup]) -> GroupColumns:
    function = SymbolKind.FUNCTION
    if any(len(group.names) != len(group.symbol_indexes) for group in groups):
        raise StoredValueError("a symbol group with another number of names than indexes")
    return GroupColumns(
        is_function=[group.kind is function for group in groups],
        sizes=[group.size for group in groups],
        link_addresses=[group.link_address for group in groups],
        section_classes=[_POSITION[group.section_class] for group in groups],
        is_global=[group.is_global for group in groups],
        member_counts=[group.member_count for group in groups],
        name_counts=[len(group.names) for group in groups],
        alias_counts=[len(group.alias_names) for group in groups],
        base_names=[group.base_name for group in groups],
        nm_types=[group.nm_type for group in groups],
        units=[group.unit for group in groups],
        file_symbols=[group.file_symbol for group in groups],
        dwarf_names=[group.dwarf_name for group in groups],
        decl_files=[group.decl_file for group in groups],
        names=[name for group in groups for name in group.names],
        symbol_indexes=[index for group in groups for index in group.symbol_indexes],
        alias_names=[name for group in groups for name in group.alias_names],
    )


def census_from_columns(columns: CensusColumns, path: str) -> ImageCensus:
    """The census the index kept, for the image at ``path`` (the file may have moved since:
    the index is named by the build id). :class:`UnknownStoredCensus` when it names classes
    this version does not know."""
    by_value = {section_class.value: section_class for section_class in _CLASSES}
    try:
        classes = [by_value[name] for name in columns.class_names]
    except KeyError as error:
        raise UnknownStoredCensus(f"a stored census of section class {error}") from None
    return ImageCensus(
        path=path,
        build_id=columns.build_id,
        machine=columns.machine,
        kind=ImageKind(columns.kind),
        sections=tuple(
            ListedSection(name=name, size=size, section_class=classes[position])
            for name, size, position in columns.sections
        ),
        groups=_groups(columns.groups, classes),
        empty_groups=_stored_empty_groups(columns.empty_groups, classes),
        symbol_bytes={classes[position]: size for position, size in columns.symbol_bytes},
        inlined=InlinedFunctions(
            names=columns.inlined_names,
            decl_files=columns.inlined_decl_files,
            counts=columns.inlined_counts,
            caller_counts=columns.inlined_caller_counts,
            caller_low_pcs=columns.inlined_caller_low_pcs,
            caller_instances=columns.inlined_caller_instances,
        ),
        has_dwarf=columns.has_dwarf,
        dwarf_seconds=columns.dwarf_seconds,
    )


def _groups(columns: GroupColumns, classes: list[SectionClass]) -> tuple[SymbolGroup, ...]:
    """The groups, each made from its row of the columns (:class:`SymbolGroup`'s note), the
    names, indexes and aliases of each cut from their columns by its counts: no Python code
    runs per group."""
    name_tuples = cut_runs(columns.names, columns.name_counts)
    index_tuples = cut_runs(columns.symbol_indexes, columns.name_counts)
    alias_tuples = cut_runs(columns.alias_names, columns.alias_counts)
    rows = zip(
        map(_KINDS.__getitem__, columns.is_function),
        columns.base_names,
        name_tuples,
        columns.sizes,
        columns.link_addresses,
        map(classes.__getitem__, columns.section_classes),
        columns.units,
        columns.file_symbols,
        columns.dwarf_names,
        columns.decl_files,
        map(bool, columns.is_global),
        index_tuples,
        columns.nm_types,
        columns.member_counts,
        alias_tuples,
        strict=True,
    )
    return tuple(map(new_group, rows))


def _stored_empty_groups(columns: GroupColumns, classes: list[SectionClass]) -> EmptyGroups:
    """The size-0 groups, made from their rows of the columns when asked for."""
    names = list(cut_runs(columns.names, columns.name_counts))
    name_starts: list[int] = []  # where each group's indexes start, then where they end
    alias_starts: list[int] = []

    def make(positions: Sequence[int]) -> tuple[SymbolGroup, ...]:
        if not name_starts:
            name_starts.extend(itertools.accumulate(columns.name_counts, initial=0))
            alias_starts.extend(itertools.accumulate(columns.alias_counts, initial=0))

        def pick(column: Sequence[T]) -> list[T]:
            return [column[p] for p in positions]

        return _groups(
            GroupColumns(
                is_function=pick(columns.is_function),
                sizes=pick(columns.sizes),
                link_addresses=pick(columns.link_addresses),
                section_classes=pick(columns.section_classes),
                is_global=pick(columns.is_global),
                member_counts=pick(columns.member_counts),
                name_counts=pick(columns.name_counts),
                alias_counts=pick(columns.alias_counts),
                base_names=pick(columns.base_names),
                nm_types=pick(columns.nm_types),
                units=pick(columns.units),
                file_symbols=pick(columns.file_symbols),
                dwarf_names=pick(columns.dwarf_names),
                decl_files=pick(columns.decl_files),
                names=[name for p in positions for name in names[p]],
                symbol_indexes=[
                    index
                    for p in positions
                    for index in columns.symbol_indexes[name_starts[p] : name_starts[p + 1]]
                ],
                alias_names=[
                    alias
                    for p in positions
                    for alias in columns.alias_names[alias_starts[p] : alias_starts[p + 1]]
                ],
            ),
            classes,
        )

    return EmptyGroups(names, make)


# -- what ltosyms index runs (in a worker process of its own) ------------------------------------


def indexed_census_key(image: KernelImage) -> str:
    """The stored key of the census ``ltosyms diff`` reads first: the one with DWARF."""
    return str(kinds.DIFF_CENSUS.key(census_key(image, True)))


def indexed_census_rows(image: KernelImage) -> list[tuple[str, bytes]]:
    """The stored rows of ``image``'s census with DWARF and without (what ``ltosyms diff`` and
    ``ltosyms diff --format bloat-o-meter`` read); none for a census with a note."""
    from ltosyms.elf.symtab import SymbolTable  # on first use: see ltosyms.elf

    loaded = LoadedImage(image=image, symbols=SymbolTable(image))
    rows = []
    for use_dwarf in (True, False):
        try:
            columns = census_columns(take_image_census(loaded, use_dwarf=use_dwarf))
            data = kinds.DIFF_CENSUS.encode(columns)
        except StoredValueError:  # a census with a note, or one the index cannot keep
            continue
        rows.append((str(kinds.DIFF_CENSUS.key(census_key(image, use_dwarf))), data))
    return rows
