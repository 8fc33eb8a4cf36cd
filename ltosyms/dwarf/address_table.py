"""One image's address table: every unit's lookup tables in one flat buffer, read in place.

The resolver (:class:`~ltosyms.dwarf.DwarfResolver`) keeps each unit it parses as a
:class:`CuData`: a few dozen narrow columns (line rows, the function and inline tree, their
ranges and call sites) and a handful of string lists. An :class:`AddressTable` is all of them
for a whole image (vmlinux or module), plus the address -> unit map, concatenated: each column
of the table is every unit's column one after the other, units sorted by ``.debug_info``
offset, and per-unit bounds say where each unit's part starts. Names and paths are ids into
one string table (each string once for the image: gcc's 353,896 function nodes of the Debian
6.1 vmlinux name 69,894 distinct functions).

So a unit read from the table is a :class:`CuData` whose columns are memoryview slices of the
buffer (and whose names are read from the string table as asked): the lookups that answer
for a parsed or stored unit (:meth:`CuData.locations`, :meth:`CuData.function_extent`) answer
for it, unchanged, and the unit map is a :class:`CuMap` over the table's columns, so the unit
an address falls in is chosen as it is today.

One thing more is stored per unit: its chain map, the answer of :meth:`CuData.inline_chain`
between each two consecutive range boundaries (the innermost function there and how many
functions its chain holds), worked out by the builder with that very method at each
boundary. Between two boundaries no comparison the walk makes can change, so the map gives
what the walk gives, at every address; the walk down a big function's inline tree (a third of
a lookup, measured on the Debian 6.1 vmlinux) becomes one bisection and a walk up a few
parents. A lookup is then a bisection in the unit map, one in the unit's chain map, the walk
up, and one bisection in its line rows: nothing is parsed, inflated or unmarshalled, and
opening the table reads its header and checks its checksum (:mod:`ltosyms.dwarf.table_layout`).
Built by :class:`AddressTableBuilder` from the units an index build parses anyway, in any
order: the bytes depend on the units only.
"""

from __future__ import annotations

import operator
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, overload

from ltosyms.dwarf.records import FunctionLines, SourceLocation
from ltosyms.dwarf.table_layout import Column, pack_columns, read_columns, require
from ltosyms.dwarf.unit_map import CuMap
from ltosyms.dwarf.unit_records import CompileUnit, FunctionExtent
from ltosyms.dwarf.unit_tables import ARRAY_FIELDS, CuData, narrow
from ltosyms.errors import CacheError

__all__ = ["ADDRESS_TABLE_KIND", "AddressTable", "AddressTableBuilder", "ChainMap", "chain_map"]

# What the table holds, with the format of its columns (bump on any change to them, to what
# CuData holds, or to how the builder fills them): a table of another kind is refused.
ADDRESS_TABLE_KIND = "dwarf-addresses/1"

# The per-unit columns of a CuData as the table stores them, by part of the unit.
_ROW_COLUMNS = ("row_addresses", "row_files", "row_lines", "row_columns")
_NODE_COLUMNS = (
    "parents",
    "ends",
    "inlined",
    "call_files",
    "call_lines",
    "call_columns",
    "decl_files",
    "decl_lines",
)
_RANGE_COLUMNS = ("range_lows", "range_highs")
_ROOT_COLUMNS = ("root_lows", "root_highs", "root_nodes")
# Per unit (sorted by offset); the *_bounds columns have one entry more: unit i's rows are
# rows[row_bounds[i]:row_bounds[i + 1]], and so on. A unit's range_starts (one per node and
# one past the last) lie at [node_bounds[i] + i, node_bounds[i + 1] + i + 1).
_BOUNDS = (
    "row_bounds",
    "node_bounds",
    "range_bounds",
    "root_bounds",
    "file_bounds",
    "chain_bounds",
)
_UNIT_FIELDS = ("unit_offsets", "unit_bases", "unit_names", "unit_comp_dirs", "unit_flags")
_UNIT_COLUMNS = (*_UNIT_FIELDS, *_BOUNDS)
# A unit's chain map: from each start (an offset from the unit's address base) to the next,
# the innermost function node plus one (0: none) and the length of the chain it starts.
_CHAIN_COLUMNS = ("chain_starts", "chain_nodes", "chain_lengths")
# Per file of a unit: string ids of its two paths, its line-table number plus one (0: none).
_FILE_COLUMNS = ("file_full_paths", "file_relative_paths", "file_numbers")
# The address -> unit map (CuMap), 8 bytes a value as CuMap keeps them; the image's unit count.
_MAP_COLUMNS = ("map_starts", "map_ends", "map_units", "map_unit_count")
# String ids: 0 is None, string i (from 1) is string_bytes[string_ends[i - 1]:string_ends[i]]
# (string_ends[0] is 0).
_STRING_COLUMNS = ("string_ends", "string_bytes")
_COLUMNS = (
    *_UNIT_COLUMNS,
    *_ROW_COLUMNS,
    "node_names",
    *_NODE_COLUMNS,
    "range_starts",
    *_RANGE_COLUMNS,
    *_ROOT_COLUMNS,
    *_CHAIN_COLUMNS,
    *_FILE_COLUMNS,
    *_MAP_COLUMNS,
    *_STRING_COLUMNS,
)
_CLANG = 1  # unit_flags: the producer is clang


class StringTable:
    """The strings of a table, decoded when asked (the few a lookup names), each once.

    String ``i`` (from 1) is ``data[ends[i - 1]:ends[i]]``; id 0 is None (``ends[0]`` is 0)."""

    __slots__ = ("_data", "_ends", "decoded")

    def __init__(self, ends: Column, data: memoryview) -> None:
        self._ends = ends
        self._data = data
        self.decoded: dict[int, str | None] = {0: None}  # by id, the strings decoded so far

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, string_id: int) -> str | None:
        try:
            return self.decoded[string_id]
        except KeyError:
            ends = self._ends
            try:
                text = str(
                    self._data[ends[string_id - 1] : ends[string_id]], "utf-8", "surrogatepass"
                )
            except UnicodeDecodeError as error:  # not what the builder writes
                raise CacheError(
                    f"address table: string {string_id} is no UTF-8: {error}"
                ) from None
            self.decoded[string_id] = text
            return text


class _Names(Sequence["str | None"]):
    """A unit's function names: its column of string ids, read as the strings when asked (a
    big unit names 40,000 functions, a lookup two or three)."""

    __slots__ = ("_decoded", "_ids", "_strings")

    def __init__(self, ids: Column, strings: StringTable) -> None:
        self._ids = ids
        self._strings = strings
        self._decoded = strings.decoded

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, index: int) -> str | None: ...

    @overload
    def __getitem__(self, index: slice) -> list[str | None]: ...

    def __getitem__(self, index: int | slice) -> str | list[str | None] | None:
        # The lookups' path first: a name decoded before (the slice case fails the look-up).
        try:
            return self._decoded[self._ids[index]]  # type: ignore[index]
        except (KeyError, TypeError):
            pass
        if isinstance(index, slice):
            return [self._strings[string_id] for string_id in self._ids[index]]
        return self._strings[self._ids[index]]

    def __iter__(self) -> Iterator[str | None]:
        strings = self._strings
        return (strings[string_id] for string_id in self._ids)


class AddressTable:
    """Every unit of one image, answering as its :class:`CuData` would (see the module)."""

    def __init__(self, columns: dict[str, Column], image_key: str) -> None:
        """``columns`` as :meth:`from_buffer` reads them or the builder makes them: use those."""
        self.image_key = image_key
        self._columns = columns
        self._offsets = columns["unit_offsets"]
        self.strings = StringTable(columns["string_ends"], memoryview(columns["string_bytes"]))
        self.cu_map = CuMap(
            starts=columns["map_starts"],
            ends=columns["map_ends"],
            units=columns["map_units"],
            unit_count=columns["map_unit_count"][0],
        )
        self._units: dict[int, _Unit] = {}

    # -- bytes -------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The table's bytes (:mod:`ltosyms.dwarf.table_layout`): what :meth:`from_buffer`
        reads back, in place."""
        return pack_columns(
            ADDRESS_TABLE_KIND, self.image_key, [(name, self._columns[name]) for name in _COLUMNS]
        )

    @classmethod
    def from_buffer(
        cls, buffer: Any, image_key: str | None = None, *, checksum: bool = True
    ) -> AddressTable:
        """The table in ``buffer`` (bytes, or a memory map: its pages are read as lookups touch
        them), for the image ``image_key`` when given. Raises :class:`CacheError` unless the
        buffer holds a whole, undamaged address table of this format (and of that image);
        ``checksum=False``: the caller checked the bytes' CRC-32 itself (see
        :func:`~ltosyms.dwarf.table_layout.read_columns`)."""
        stored = read_columns(buffer, ADDRESS_TABLE_KIND, image_key, checksum=checksum)
        require(stored.columns, ADDRESS_TABLE_KIND, _COLUMNS)
        _check_shape(stored.columns)
        columns: dict[str, Column] = dict(stored.columns)
        return cls(columns, stored.image_key)

    # -- units -------------------------------------------------------------------------------

    @property
    def unit_count(self) -> int:
        return len(self._offsets)

    def unit_offsets(self) -> list[int]:
        """Every unit with code, in .debug_info order."""
        return self.cu_map.unit_offsets()

    def unit(self, cu_offset: int) -> CuData:
        """The unit at ``cu_offset`` as a :class:`CuData` over the table's columns (made once
        per unit: a few dozen slices, nothing read). :class:`CacheError` when the table holds no
        such unit."""
        return self._unit(cu_offset).data

    def _unit(self, cu_offset: int) -> _Unit:
        unit = self._units.get(cu_offset)
        if unit is None:
            index = self._index(cu_offset)
            if index is None:
                raise CacheError(f"address table of {self.image_key}: no unit at {cu_offset:#x}")
            c = self._columns
            chains = slice(c["chain_bounds"][index], c["chain_bounds"][index + 1])
            unit = self._units[cu_offset] = _Unit(
                data=self._unit_at(index),
                chain_starts=c["chain_starts"][chains],
                chain_nodes=c["chain_nodes"][chains],
                chain_lengths=c["chain_lengths"][chains],
            )
        return unit

    def compile_unit(self, cu_offset: int) -> CompileUnit | None:
        """The unit's name and compilation directory, as its top DIE gives them."""
        index = self._index(cu_offset)
        if index is None:
            return None
        strings, columns = self.strings, self._columns
        return CompileUnit(
            offset=cu_offset,
            name=strings[columns["unit_names"][index]],
            comp_dir=strings[columns["unit_comp_dirs"][index]],
        )

    def _index(self, cu_offset: int) -> int | None:
        offsets = self._offsets
        index = bisect_left(offsets, cu_offset)
        return index if index < len(offsets) and offsets[index] == cu_offset else None

    def _unit_at(self, index: int) -> CuData:
        c = self._columns
        strings = self.strings
        row = slice(c["row_bounds"][index], c["row_bounds"][index + 1])
        node_start, node_end = c["node_bounds"][index], c["node_bounds"][index + 1]
        node = slice(node_start, node_end)
        ranges = slice(c["range_bounds"][index], c["range_bounds"][index + 1])
        root = slice(c["root_bounds"][index], c["root_bounds"][index + 1])
        file = slice(c["file_bounds"][index], c["file_bounds"][index + 1])
        return CuData(
            cu_offset=c["unit_offsets"][index],
            name=strings[c["unit_names"][index]],
            comp_dir=strings[c["unit_comp_dirs"][index]],
            producer_is_clang=bool(c["unit_flags"][index] & _CLANG),
            address_base=c["unit_bases"][index],
            # A unit names a dozen files (gcc's largest, a few hundred): read them now.
            full_paths=tuple(strings[i] for i in c["file_full_paths"][file]),
            relative_paths=tuple(strings[i] for i in c["file_relative_paths"][file]),
            file_numbers=tuple(number - 1 for number in c["file_numbers"][file]),
            row_addresses=c["row_addresses"][row],
            row_files=c["row_files"][row],
            row_lines=c["row_lines"][row],
            row_columns=c["row_columns"][row],
            names=_Names(c["node_names"][node], strings),
            parents=c["parents"][node],
            ends=c["ends"][node],
            inlined=c["inlined"][node],
            call_files=c["call_files"][node],
            call_lines=c["call_lines"][node],
            call_columns=c["call_columns"][node],
            decl_files=c["decl_files"][node],
            decl_lines=c["decl_lines"][node],
            range_starts=c["range_starts"][node_start + index : node_end + index + 1],
            range_lows=c["range_lows"][ranges],
            range_highs=c["range_highs"][ranges],
            root_lows=c["root_lows"][root],
            root_highs=c["root_highs"][root],
            root_nodes=c["root_nodes"][root],
        )

    # -- lookups: what DwarfResolver answers, for link addresses of the image -----------------

    def cu_for(self, link_address: int) -> int | None:
        """The unit whose code holds ``link_address`` (None: no unit claims it)."""
        return self.cu_map.unit_at(link_address)

    def locations(
        self, link_address: int, outer_name: Callable[[int, bool], str | None] | None = None
    ) -> tuple[SourceLocation, ...]:
        """The inline chain at ``link_address``, innermost first, as :meth:`CuData.locations`
        gives it (its chain from the chain map)."""
        unit = self._unit_holding(link_address)
        if unit is None:
            return ()
        data = unit.data
        position = bisect_right(unit.chain_starts, link_address - data.address_base) - 1
        chain: list[int] = []
        if position >= 0:
            node = unit.chain_nodes[position] - 1
            if node >= 0:
                chain.append(node)
                parents = data.parents
                for _ in range(unit.chain_lengths[position] - 1):
                    node = parents[node] - 1
                    chain.append(node)
        return data.chain_locations(link_address, chain, outer_name)

    def row_start(self, link_address: int) -> int | None:
        """Where the line-table row covering ``link_address`` starts (None: no unit's rows
        cover it)."""
        unit = self._unit_holding(link_address)
        return None if unit is None else unit.data.row_start(link_address)

    def function_at(self, link_address: int) -> FunctionExtent | None:
        unit = self._unit_holding(link_address)
        return None if unit is None else unit.data.function_extent(link_address)

    def function_lines(self, link_address: int) -> FunctionLines | None:
        unit = self._unit_holding(link_address)
        return None if unit is None else unit.data.function_lines(link_address)

    def compile_unit_at(self, link_address: int) -> CompileUnit | None:
        """The unit whose code holds ``link_address`` (None: no unit claims it; the unit map
        names only units of the table, see _check_shape)."""
        cu_offset = self.cu_map.unit_at(link_address)
        return None if cu_offset is None else self.compile_unit(cu_offset)

    def _unit_holding(self, link_address: int) -> _Unit | None:
        """The unit whose code holds ``link_address`` (None: no unit claims it)."""
        cu_offset = self.cu_map.unit_at(link_address)
        return None if cu_offset is None else self._unit(cu_offset)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Unit:
    """A unit of the table: its CuData and its chain map (slices of the table's columns)."""

    data: CuData
    chain_starts: Column
    chain_nodes: Column
    chain_lengths: Column


def _check_shape(columns: dict[str, memoryview]) -> None:
    """Raise :class:`CacheError` unless the columns fit together: equal lengths, per-unit
    bounds that rise and end at their columns' lengths. Reads the per-unit columns only (a
    few thousand values), so that no slice of a unit reaches past its columns."""
    units = len(columns["unit_offsets"])
    nodes = len(columns["node_names"])
    lengths = {
        "row_bounds": len(columns["row_addresses"]),
        "node_bounds": nodes,
        "range_bounds": len(columns["range_lows"]),
        "root_bounds": len(columns["root_lows"]),
        "file_bounds": len(columns["file_full_paths"]),
        "chain_bounds": len(columns["chain_starts"]),
    }
    same = [
        _UNIT_FIELDS,
        _ROW_COLUMNS,
        ("node_names", *_NODE_COLUMNS),
        _RANGE_COLUMNS,
        _ROOT_COLUMNS,
        _CHAIN_COLUMNS,
        _FILE_COLUMNS,
        _MAP_COLUMNS[:3],
    ]
    consistent = (
        all(len({len(columns[name]) for name in group}) == 1 for group in same)
        and len(columns["unit_names"]) == units
        and len(columns["range_starts"]) == nodes + units
        and len(columns["map_unit_count"]) == 1
        and all(
            len(columns[name]) == units + 1
            and columns[name][0] == 0
            and columns[name][units] == length
            and _ascending(columns[name], operator.le)
            for name, length in lengths.items()
        )
        and _ascending(columns["unit_offsets"], operator.lt)
        and set(columns["map_units"]) <= set(columns["unit_offsets"])
        and len(columns["string_ends"]) >= 1
        and columns["string_ends"][0] == 0
        and columns["string_ends"][-1] == len(columns["string_bytes"])
        and _ascending(columns["string_ends"], operator.le)
    )
    if not consistent:
        raise CacheError(f"{ADDRESS_TABLE_KIND} table: its columns do not fit together")


def _ascending(column: Column, order: Callable[[int, int], bool]) -> bool:
    """Each value of ``column`` and the next are in ``order`` (compared in C: a table opened
    checks ~200,000 of them, Debian 6.1's strings)."""
    return all(map(order, column[:-1], column[1:]))


@dataclass(slots=True)
class _AddedUnit:
    """One unit as the builder keeps it until :meth:`AddressTableBuilder.table`: its columns
    (shared with the :class:`CuData`), its strings turned into ids of the builder."""

    data: CuData
    name: int
    comp_dir: int
    full_paths: list[int]
    relative_paths: list[int]
    names: list[int]
    chains: ChainMap


class AddressTableBuilder:
    """Collects the units of an image, in any order, then makes its :class:`AddressTable`.

    An index build adds each unit as a worker hands it back: :meth:`add` works out the
    unit's chain map (a millisecond for most units; 2.6 s for all of the Debian 6.1 vmlinux)
    and keeps the unit's columns and one id per string until :meth:`table`."""

    def __init__(self, image_key: str) -> None:
        self.image_key = image_key
        self._units: dict[int, _AddedUnit] = {}
        self._string_ids: dict[str, int] = {}

    def add(self, data: CuData, chains: ChainMap | None = None) -> None:
        """Keep ``data`` for the table. ``chains`` is its :func:`chain_map` when the caller
        worked it out already (an index build's worker processes, next to the parse: it is
        most of the builder's work); else it is worked out here."""
        intern = self._intern
        self._units[data.cu_offset] = _AddedUnit(
            data=data,
            name=intern(data.name),
            comp_dir=intern(data.comp_dir),
            full_paths=[intern(path) for path in data.full_paths],
            relative_paths=[intern(path) for path in data.relative_paths],
            names=[intern(name) for name in data.names],
            chains=chains if chains is not None else chain_map(data),
        )

    def _intern(self, text: str | None) -> int:
        # Ids in order of first use here; table() renumbers them in string order.
        if text is None:
            return 0
        found = self._string_ids.get(text)
        if found is None:
            found = self._string_ids[text] = len(self._string_ids) + 1
        return found

    def table(self, cu_map: CuMap) -> AddressTable:
        """The table of the units added and the image's unit map (which must name no unit that
        was not added: :class:`CacheError`)."""
        missing = sorted(set(cu_map.units) - set(self._units))
        if missing:
            raise CacheError(
                f"address table of {self.image_key}: {len(missing)} units of the unit map "
                f"were not added (the first at {missing[0]:#x})"
            )
        # Strings in sorted order, so that the bytes do not depend on the order units came in.
        ordered = sorted(self._string_ids)
        renumber = array("I", [0]) * (len(ordered) + 1)
        for new_id, text in enumerate(ordered, start=1):
            renumber[self._string_ids[text]] = new_id
        encoded = [text.encode("utf-8", "surrogatepass") for text in ordered]
        units = [self._units[cu_offset] for cu_offset in sorted(self._units)]
        columns: dict[str, Column] = {
            name: _concatenated([getattr(added.data, name) for added in units])
            for name in ARRAY_FIELDS  # a unit's arrays, copied as they are
        }
        for name, part in zip(_CHAIN_COLUMNS, ("starts", "nodes", "lengths"), strict=True):
            columns[name] = _concatenated([getattr(added.chains, part) for added in units])
        per_unit: dict[str, list[int]] = {name: [] for name in _UNIT_COLUMNS}
        listed: dict[str, list[int]] = {name: [] for name in ("node_names", *_FILE_COLUMNS)}
        for name in _BOUNDS:
            per_unit[name].append(0)
        for added in units:
            data = added.data
            per_unit["unit_offsets"].append(data.cu_offset)
            per_unit["unit_bases"].append(data.address_base)
            per_unit["unit_names"].append(renumber[added.name])
            per_unit["unit_comp_dirs"].append(renumber[added.comp_dir])
            per_unit["unit_flags"].append(_CLANG if data.producer_is_clang else 0)
            listed["node_names"].extend([renumber[i] for i in added.names])
            listed["file_full_paths"].extend([renumber[i] for i in added.full_paths])
            listed["file_relative_paths"].extend([renumber[i] for i in added.relative_paths])
            listed["file_numbers"].extend([number + 1 for number in data.file_numbers])
            per_unit["row_bounds"].append(per_unit["row_bounds"][-1] + data.row_count)
            per_unit["node_bounds"].append(per_unit["node_bounds"][-1] + data.function_count)
            per_unit["range_bounds"].append(per_unit["range_bounds"][-1] + len(data.range_lows))
            per_unit["root_bounds"].append(per_unit["root_bounds"][-1] + len(data.root_lows))
            per_unit["file_bounds"].append(per_unit["file_bounds"][-1] + len(added.full_paths))
            per_unit["chain_bounds"].append(per_unit["chain_bounds"][-1] + len(added.chains.starts))
        for name, values in (*per_unit.items(), *listed.items()):
            columns[name] = narrow(values)
        # The unit map keeps CuMap's own 8-byte columns (CuMap.to_bytes writes them as they are).
        columns["map_starts"] = array("Q", cu_map.starts)
        columns["map_ends"] = array("Q", cu_map.ends)
        columns["map_units"] = array("Q", cu_map.units)
        columns["map_unit_count"] = array("Q", [cu_map.unit_count])
        columns["string_ends"] = narrow(list(accumulate(map(len, encoded), initial=0)))
        columns["string_bytes"] = array("B", b"".join(encoded))
        return AddressTable(columns, self.image_key)


def _concatenated(parts: Sequence[Column]) -> array[int]:
    """``parts`` one after the other, in the widest type of any of them (all are unsigned)."""
    typecode = max((_typecode(part) for part in parts), key=_WIDTHS.index, default="B")
    joined = array(typecode)
    for part in parts:
        if _typecode(part) == typecode:
            joined.frombytes(part.tobytes())
        else:
            joined.fromlist(part.tolist())
    return joined


_WIDTHS = "BHIQ"


def _typecode(values: Column) -> str:
    return values.typecode if isinstance(values, array) else values.format


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainMap:
    """A unit's chain map (see the module): from each of ``starts`` (offsets from the unit's
    address base) to the next, the innermost function node plus one (0: none) and the length
    of its inline chain."""

    starts: array[int]
    nodes: array[int]
    lengths: array[int]


def chain_map(data: CuData) -> ChainMap:
    """The unit's chain map: at each range boundary where :meth:`CuData.inline_chain`
    answers otherwise than just before, that answer.

    Exact by construction: the walk compares an address with range bounds only
    (:meth:`CuData.function_node` with the subprograms', :meth:`CuData.inline_chain` with
    every node's), so between two consecutive bounds its answer cannot change; before the
    first and from the last on it is empty. Costs one walk per boundary (Debian 6.1's vmlinux:
    582,000 boundaries, 577,000 entries, about 2.6 s in one process)."""
    starts: list[int] = []
    nodes: list[int] = []
    lengths: list[int] = []
    base = data.address_base
    bounds = sorted({*data.range_lows, *data.range_highs, *data.root_lows, *data.root_highs})
    chain_at = data.inline_chain
    previous = (-1, -1)
    for bound in bounds:
        chain = chain_at(base + bound)
        answer = (chain[0] + 1, len(chain)) if chain else (0, 0)
        if answer != previous:
            starts.append(bound)
            nodes.append(answer[0])
            lengths.append(answer[1])
            previous = answer
    return ChainMap(starts=narrow(starts), nodes=narrow(nodes), lengths=narrow(lengths))
