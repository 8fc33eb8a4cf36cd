"""The codec of the diff census (:data:`ltosyms.index.kinds.DIFF_CENSUS`): loaded only
when a diff stores or reads a census, so that a decode does not import it.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from ltosyms.index.encoding import Buffer, Column, StoredValueError, pack_columns, unpack_columns
from ltosyms.index.fields import (
    checked_decoder,
    dictionary_column,
    stored_bool,
    stored_int,
    stored_pair,
    stored_str,
    stored_tuple,
    string_column,
    values_of_dictionary,
)
from ltosyms.limits import MAX_COMPRESSION_RATIO, MIN_INFLATE_BYTES

if TYPE_CHECKING:
    from ltosyms.elf.image import KernelImage


# -- the diff census of an image ---------------------------------------------------------------
#
# The diff sits above the persistence layer: its census (ltosyms.diff.census.ImageCensus) is
# kept as the plain columns below, which the diff makes from its records and its records from.
# Section classes and symbol kinds are named by strings (the diff's enum values).


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupColumns:
    """Symbol groups (ltosyms.diff.model.SymbolGroup), one entry per group in each per-group
    column; ``names`` and ``symbol_indexes`` hold ``name_counts[i]`` entries for group ``i``,
    ``alias_names`` ``alias_counts[i]``, one after the other."""

    is_function: Sequence[int]
    sizes: Sequence[int]
    link_addresses: Sequence[int]
    section_classes: Sequence[int]  # positions in CensusColumns.class_names
    is_global: Sequence[int]
    member_counts: Sequence[int]
    name_counts: Sequence[int]
    alias_counts: Sequence[int]
    base_names: Sequence[str]
    nm_types: Sequence[str]
    units: Sequence[str | None]
    file_symbols: Sequence[str | None]
    dwarf_names: Sequence[str | None]
    decl_files: Sequence[str | None]
    names: Sequence[str]
    symbol_indexes: Sequence[int]
    alias_names: Sequence[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class CensusColumns:
    """An image's diff census as plain values. The ``inlined_*`` columns hold, per function
    inlined somewhere, its name, declaring file, count of inlined instances and number of
    callers, and the callers of all of them one function after the other: the ``low_pc`` of
    the out-of-line function holding instances, and how many it holds."""

    build_id: str | None
    machine: str
    kind: str  # ltosyms.elf.image.ImageKind value
    has_dwarf: bool
    dwarf_seconds: float | None
    class_names: tuple[str, ...]
    sections: tuple[tuple[str, int, int], ...]  # name, size, position in class_names
    symbol_bytes: tuple[tuple[int, int], ...]  # position in class_names, bytes
    groups: GroupColumns
    empty_groups: GroupColumns
    inlined_names: Sequence[str]
    inlined_decl_files: Sequence[str | None]
    inlined_counts: Sequence[int]
    inlined_caller_counts: Sequence[int]
    inlined_caller_low_pcs: Sequence[int]
    inlined_caller_instances: Sequence[int]


_GROUP_NUMBERS: tuple[tuple[str, Literal["B", "I", "Q"]], ...] = (
    ("is_function", "B"),
    ("sizes", "Q"),
    ("link_addresses", "Q"),
    ("section_classes", "B"),
    ("is_global", "B"),
    ("member_counts", "I"),
    ("name_counts", "I"),
    ("alias_counts", "I"),
)
_GROUP_TEXTS = ("base_names", "nm_types", "units", "file_symbols", "dwarf_names", "decl_files")
_GROUP_NAMES = frozenset({"base_names", "nm_types"})  # never None
# Number columns, per text column its distinct strings and positions, names, indexes, alias
# names.
_GROUP_COLUMNS = len(_GROUP_NUMBERS) + 2 * len(_GROUP_TEXTS) + 3
# Inlined functions: names, decl files (distinct strings + positions), counts, callers per
# function, caller low_pcs and caller counts.
_INLINED_COLUMNS = 7


def encode_diff_census(census: CensusColumns) -> bytes:
    fields = (
        census.build_id,
        census.machine,
        census.kind,
        census.has_dwarf,
        census.class_names,
        census.sections,
        census.symbol_bytes,
        len(census.groups.sizes),
        len(census.empty_groups.sizes),
        len(census.inlined_names),
    )
    # The seconds as a column: marshal's floats are not among the stored types.
    seconds = () if census.dwarf_seconds is None else (census.dwarf_seconds,)
    columns: list[Column] = [array("d", seconds)]
    for groups in (census.groups, census.empty_groups):
        columns.extend(_group_columns(groups))
    columns.append(string_column(census.inlined_names)[0])
    columns.extend(dictionary_column(census.inlined_decl_files))
    columns.append(array("Q", census.inlined_counts))
    columns.append(array("I", census.inlined_caller_counts))
    columns.append(array("Q", census.inlined_caller_low_pcs))
    columns.append(array("Q", census.inlined_caller_instances))
    # zlib level 1: the columns of a distribution kernel's census shrink ~5x (Debian 6.1
    # vmlinux: 29.6 MB of both censuses -> 5.7 MB, a third of its index) for ~0.25 s when the
    # index is written and ~0.2 s when a diff reads them back.
    return zlib.compress(pack_columns(fields, columns), 1)


def _group_columns(groups: GroupColumns) -> list[Column]:
    columns: list[Column] = [array(code, getattr(groups, name)) for name, code in _GROUP_NUMBERS]
    for name in _GROUP_TEXTS:
        columns.extend(dictionary_column(getattr(groups, name), optional=name not in _GROUP_NAMES))
    columns.append(string_column(groups.names)[0])
    columns.append(array("I", groups.symbol_indexes))
    columns.append(string_column(groups.alias_names)[0])
    return columns


def _inflated(data: Buffer) -> bytes:
    """The census' columns, inflated no further than the image limits allow a compressed
    section (a damaged row must not fill the memory)."""
    packed = bytes(data)
    limit = max(MIN_INFLATE_BYTES, len(packed) * MAX_COMPRESSION_RATIO)
    inflater = zlib.decompressobj()
    try:
        columns = inflater.decompress(packed, limit)
    except zlib.error as error:
        raise StoredValueError(f"a diff census that does not inflate: {error}") from None
    if inflater.unconsumed_tail:
        raise StoredValueError(f"a diff census that inflates past {limit:,} bytes")
    if not inflater.eof:
        raise StoredValueError("a diff census cut short")
    if inflater.unused_data:
        raise StoredValueError("a diff census with bytes after its end")
    return columns


@checked_decoder
def decode_diff_census(data: Buffer, image: KernelImage) -> CensusColumns:
    fields, (seconds, *raws) = unpack_columns(
        _inflated(data), 1 + 2 * _GROUP_COLUMNS + _INLINED_COLUMNS
    )
    build_id, machine, kind, has_dwarf, class_names, sections, symbol_bytes, *counts = stored_tuple(
        fields, 10
    )
    if build_id != image.build_id or machine != image.machine or kind != image.kind.value:
        raise StoredValueError("a diff census of another image")
    group_count, empty_count, inlined_count = (stored_int(count) for count in counts)
    names = tuple(stored_str(name) for name in stored_tuple(class_names))

    def class_position(value: object) -> int:
        if not 0 <= stored_int(value) < len(names):
            raise StoredValueError("a stored section class out of range")
        return stored_int(value)

    return CensusColumns(
        build_id=image.build_id,
        machine=image.machine,
        kind=image.kind.value,
        has_dwarf=stored_bool(has_dwarf),
        dwarf_seconds=seconds.cast("d")[0] if len(seconds) else None,
        class_names=names,
        sections=tuple(
            (stored_str(name), stored_int(size), class_position(position))
            for name, size, position in (stored_tuple(row, 3) for row in stored_tuple(sections))
        ),
        symbol_bytes=tuple(
            (class_position(position), stored_int(size))
            for position, size in map(stored_pair, stored_tuple(symbol_bytes))
        ),
        groups=_group_values(raws[:_GROUP_COLUMNS], group_count, len(names)),
        empty_groups=_group_values(
            raws[_GROUP_COLUMNS : 2 * _GROUP_COLUMNS], empty_count, len(names)
        ),
        **_inlined_values(raws[2 * _GROUP_COLUMNS :], inlined_count),
    )


def _group_values(raws: Sequence[memoryview], count: int, class_count: int) -> GroupColumns:
    numbers = {
        name: raw.cast(code) for raw, (name, code) in zip(raws, _GROUP_NUMBERS, strict=False)
    }
    if any(len(column) != count for column in numbers.values()):
        raise StoredValueError("stored symbol group columns differ in length")
    if count and max(numbers["section_classes"]) >= class_count:
        raise StoredValueError("a stored section class out of range")
    if count and max(numbers["is_function"]) > 1:
        raise StoredValueError("a stored symbol kind out of range")
    rest = raws[len(_GROUP_NUMBERS) :]
    texts = {
        name: values_of_dictionary(
            rest[2 * i], rest[2 * i + 1], count, optional=name not in _GROUP_NAMES
        )
        for i, name in enumerate(_GROUP_TEXTS)
    }
    name_counts, alias_counts = numbers["name_counts"], numbers["alias_counts"]
    if count and min(name_counts) == 0:
        raise StoredValueError("a stored symbol group without a name")
    names = _texts(rest[-3], sum(name_counts))
    indexes = rest[-2].cast("I")
    if len(indexes) != len(names):
        raise StoredValueError("stored symbol groups with another number of indexes")
    return GroupColumns(
        **numbers,
        base_names=cast("list[str]", texts["base_names"]),  # columns without None
        nm_types=cast("list[str]", texts["nm_types"]),
        units=texts["units"],
        file_symbols=texts["file_symbols"],
        dwarf_names=texts["dwarf_names"],
        decl_files=texts["decl_files"],
        names=names,
        symbol_indexes=indexes,
        alias_names=_texts(rest[-1], sum(alias_counts)),
    )


def _inlined_values(raws: Sequence[memoryview], count: int) -> dict[str, Sequence[Any]]:
    """The inlined functions' columns of :class:`CensusColumns`, by field name: the strings
    split, the numbers read in place (a function's callers are cut out when asked for)."""
    names, decl_text, decl_nones, totals, caller_counts, low_pcs, caller_totals = raws
    values: dict[str, Sequence[Any]] = {
        "inlined_names": _texts(names, count),
        "inlined_decl_files": values_of_dictionary(decl_text, decl_nones, count),
        "inlined_counts": totals.cast("Q"),
        "inlined_caller_counts": caller_counts.cast("I"),
        "inlined_caller_low_pcs": low_pcs.cast("Q"),
        "inlined_caller_instances": caller_totals.cast("Q"),
    }
    if len(values["inlined_counts"]) != count or len(values["inlined_caller_counts"]) != count:
        raise StoredValueError("stored inlined functions differ in length")
    if len(values["inlined_caller_low_pcs"]) != len(values["inlined_caller_instances"]):
        raise StoredValueError("stored callers of inlined functions differ in length")
    if sum(values["inlined_caller_counts"]) != len(values["inlined_caller_low_pcs"]):
        raise StoredValueError("stored inlined functions do not fit their callers")
    return values


def _texts(raw: memoryview, count: int) -> list[str]:
    """The ``count`` strings (none of them None) of a column :func:`string_column` wrote."""
    values = str(raw, "utf-8").split("\0") if count else []
    if len(values) != count or (not count and len(raw)):
        raise StoredValueError("a stored column holds another number of strings")
    return values
