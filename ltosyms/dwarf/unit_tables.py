"""Everything the resolver keeps from one unit, as compact arrays, and the lookups over them.

A :class:`CuData` is built once from the DWARF (:meth:`ltosyms.dwarf.parser.UnitParser.unit`);
the on-disk index keeps it per (build id, unit offset) as its fields, arrays as they are, and
builds it back from them: no DWARF is touched when a unit comes from the index. A unit of an
image's address table (:mod:`ltosyms.dwarf.address_table`) is a :class:`CuData` too, whose
columns are memoryview slices of the mapped table and whose names are read from its string
table as asked: the lookups below run on either.

Layout (every array uses the narrowest type its values fit; addresses are offsets from
``address_base``, so 4 bytes each for any image whose code spans less than 4 GB):
- files: only those the unit's rows, inlined calls and functions name, as full path and
  source-relative path; index 0 means "no file" (and, in ``row_files``, ends a sequence);
  ``file_numbers`` keeps each one's line-table file number (-1: a file of another unit).
- line rows sorted by address.
- functions in preorder (a subprogram, then the inlined calls inside it, depth first); node
  ``i``'s subtree is ``i + 1 .. ends[i] - 1``; ``parents[i]`` is the parent's index plus one,
  0 for subprograms.
- each node's ranges are ``range_lows/highs[range_starts[i]:range_starts[i + 1]]``.
- subprogram ranges again, sorted by start (``root_*``): the address -> function index.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ltosyms.dwarf.records import FunctionLines, SourceLocation
from ltosyms.dwarf.unit_records import FunctionExtent

if TYPE_CHECKING:
    from ltosyms.dwarf.table_layout import Column

__all__ = [
    "END_OF_SEQUENCE",
    "NO_FILE",
    "CuData",
    "FunctionExtent",
    "SourceLocation",
    "find_row",
    "narrow",
]

# The file number of a row that ends a sequence (the first address after it); the line
# program in ltosyms.dwarf.line writes such rows.
END_OF_SEQUENCE = 0xFFFFFFFF


def find_row(
    addresses: Column, files: Column, address: int, end_marker: int = END_OF_SEQUENCE
) -> int | None:
    """Index of the row that covers ``address``: the last row at or before it in its sequence
    (llvm DWARFDebugLine::LineTable::findRowInSeq); None outside every sequence. A row whose
    file is ``end_marker`` ends a sequence."""
    position = bisect_right(addresses, address) - 1
    if position < 0 or files[position] == end_marker:
        return None
    return position


NO_FILE = 0  # file index: no file (call and declaration files), end of sequence (rows)


# The fields that are arrays, in the order the index keeps them.
ARRAY_FIELDS = (
    "row_addresses",
    "row_files",
    "row_lines",
    "row_columns",
    "parents",
    "ends",
    "inlined",
    "call_files",
    "call_lines",
    "call_columns",
    "decl_files",
    "decl_lines",
    "range_starts",
    "range_lows",
    "range_highs",
    "root_lows",
    "root_highs",
    "root_nodes",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CuData:
    ARRAY_FIELDS: ClassVar[tuple[str, ...]] = ARRAY_FIELDS

    cu_offset: int
    name: str | None  # DW_AT_name of the unit
    comp_dir: str | None
    producer_is_clang: bool
    address_base: int
    full_paths: Sequence[str | None]
    relative_paths: Sequence[str | None]
    file_numbers: Sequence[int]
    row_addresses: Column
    row_files: Column
    row_lines: Column
    row_columns: Column
    names: Sequence[str | None]
    parents: Column
    ends: Column
    inlined: Column
    call_files: Column
    call_lines: Column
    call_columns: Column
    decl_files: Column
    decl_lines: Column
    range_starts: Column
    range_lows: Column
    range_highs: Column
    root_lows: Column
    root_highs: Column
    root_nodes: Column

    # -- lookups (``offset``: link address - address_base) ------------------------------------

    def line_row(self, link_address: int) -> int | None:
        """Index of the row that covers ``link_address``: the last row at or before it in
        its sequence (llvm DWARFDebugLine::LineTable::findRowInSeq), None outside sequences."""
        offset = link_address - self.address_base
        if offset < 0:
            return None
        return find_row(self.row_addresses, self.row_files, offset, NO_FILE)

    def row_start(self, link_address: int) -> int | None:
        """Where the line-table row covering ``link_address`` starts (None outside the unit's
        sequences): an instruction start, since compilers begin rows only at instructions."""
        row = self.line_row(link_address)
        return None if row is None else self.address_base + self.row_addresses[row]

    def function_node(self, link_address: int) -> int | None:
        """The subprogram node whose ranges hold ``link_address``."""
        offset = link_address - self.address_base
        if offset < 0:
            return None
        position = bisect_right(self.root_lows, offset) - 1
        # Ranges of different subprograms do not overlap in sane DWARF; look back a little in
        # case a zero-length range sorts in between.
        highs = self.root_highs
        for candidate in range(position, max(position - 8, -1), -1):
            if offset < highs[candidate]:
                return self.root_nodes[candidate]
        return None

    def inline_chain(self, link_address: int) -> list[int]:
        """Function nodes holding ``link_address``, innermost first (empty: no function).

        The innermost node is the deepest whose ranges hold the address; the chain is it and
        its ancestors, as llvm's DWARFUnit::getInlinedChainForAddress builds it, so an
        inlined call without ranges of its own (only DW_AT_entry_pc) still shows when a call
        inside it holds the address."""
        root = self.function_node(link_address)
        if root is None:
            return []
        offset = link_address - self.address_base
        ends, starts = self.ends, self.range_starts
        lows, highs = self.range_lows, self.range_highs
        deepest = root
        node = root + 1
        end = ends[root]
        while node < end:
            first, last = starts[node], starts[node + 1]
            if first == last:  # no ranges: look inside it
                node += 1
                continue
            for index in range(first, last):
                if lows[index] <= offset < highs[index]:
                    deepest = node
                    end = ends[node]
                    node += 1
                    break
            else:
                node = ends[node]
        chain = [deepest]
        parents = self.parents
        while deepest != root:
            deepest = parents[deepest] - 1
            if deepest < 0:
                break
            chain.append(deepest)
        return chain

    def locations(
        self, link_address: int, outer_name: Callable[[int, bool], str | None] | None = None
    ) -> tuple[SourceLocation, ...]:
        """The inline chain at ``link_address``, innermost first, as llvm-symbolizer gives it:
        the innermost entry takes the line table's row, each outer entry the call site
        (DW_AT_call_file/line/column) of the entry inside it. ``outer_name(address,
        within_size)``, when given, names the outermost entry from the ELF symbols
        (:class:`ltosyms.elf.outer_names.OuterNames`); where DWARF has no function, the
        nearest symbol names it even past its size."""
        return self.chain_locations(link_address, self.inline_chain(link_address), outer_name)

    def chain_locations(
        self,
        link_address: int,
        chain: Sequence[int],
        outer_name: Callable[[int, bool], str | None] | None = None,
    ) -> tuple[SourceLocation, ...]:
        """:meth:`locations`, given the inline chain at ``link_address`` (what
        :meth:`inline_chain` answers there, however it was found: an address table keeps it
        ready, :mod:`ltosyms.dwarf.address_table`)."""
        row = self.line_row(link_address)
        if not chain and row is None:
            return ()
        if row is not None:
            file_index = self.row_files[row]
            line = self.row_lines[row] or None
            column = self.row_columns[row] or None
        else:
            file_index, line, column = NO_FILE, None, None
        if not chain:
            symbol = outer_name(link_address, False) if outer_name is not None else None
            return (self._location(symbol, None, file_index, line, column, inlined=False),)
        symbol = outer_name(link_address, True) if outer_name is not None else None
        result = []
        last = len(chain) - 1
        for depth, node in enumerate(chain):
            name = self.names[node]
            shown = symbol if depth == last and symbol is not None else name
            result.append(
                self._location(shown, name, file_index, line, column, inlined=depth != last)
            )
            file_index = self.call_files[node]
            line = self.call_lines[node] or None
            column = self.call_columns[node] or None
        return tuple(result)

    def _location(
        self,
        function: str | None,
        dwarf_function: str | None,
        file_index: int,
        line: int | None,
        column: int | None,
        *,
        inlined: bool,
    ) -> SourceLocation:
        return SourceLocation(
            function=function,
            file=self.relative_paths[file_index],
            full_path=self.full_paths[file_index],
            line=line,
            column=column if line else None,
            inlined=inlined,
            dwarf_function=dwarf_function,
        )

    def function_extent(self, link_address: int) -> FunctionExtent | None:
        node = self.function_node(link_address)
        return None if node is None else self._extent(node)

    def function_lines(self, link_address: int) -> FunctionLines | None:
        """The lines the function holding ``link_address`` spans in its declaring file (its
        first line table row's file when DWARF names none): its declaration line and the
        function's own line at each line-table row of its ranges, the line an outermost
        inline entry has there (a call site where a callee was inlined: the callee's lines
        are not the function's). None: no function holds the address, or none of these lines
        is in that file."""
        node = self.function_node(link_address)
        if node is None:
            return None
        start, stop = self.range_starts[node], self.range_starts[node + 1]
        addresses, files, lines = self.row_addresses, self.row_files, self.row_lines
        base = self.address_base
        file_index = self.decl_files[node]
        found: list[int] = []
        for low, high in zip(
            self.range_lows[start:stop], self.range_highs[start:stop], strict=True
        ):
            row = bisect_left(addresses, low)
            while row < len(addresses) and addresses[row] < high:
                row_file, line = files[row], lines[row]
                chain = self.inline_chain(base + addresses[row])
                if len(chain) > 1:  # inside an inlined call: the function is at its call site
                    row_file, line = self.call_files[chain[-2]], self.call_lines[chain[-2]]
                if file_index == NO_FILE:
                    file_index = row_file
                if row_file == file_index and line:
                    found.append(line)
                row += 1
        declared = self.decl_lines[node]
        if declared and self.decl_files[node] == file_index:
            found.append(declared)
        if not found or file_index == NO_FILE:
            return None
        return FunctionLines(
            file=self.relative_paths[file_index], first=min(found), last=max(found)
        )

    def functions(self) -> list[FunctionExtent]:
        """Every subprogram with code in the unit, in DWARF order."""
        return [
            self._extent(node)
            for node in range(len(self.names))
            if not self.parents[node] and self.range_starts[node] < self.range_starts[node + 1]
        ]

    def _extent(self, node: int) -> FunctionExtent:
        start, stop = self.range_starts[node], self.range_starts[node + 1]
        base = self.address_base
        ranges = tuple(
            (base + low, base + high)
            for low, high in zip(
                self.range_lows[start:stop], self.range_highs[start:stop], strict=True
            )
        )
        return FunctionExtent(
            name=self.names[node],
            ranges=ranges,
            entry_address=ranges[0][0] if ranges else 0,
            decl_file=self.relative_paths[self.decl_files[node]],
            decl_line=self.decl_lines[node] or None,
            cu_offset=self.cu_offset,
        )

    @property
    def function_count(self) -> int:
        return len(self.names)

    @property
    def row_count(self) -> int:
        return len(self.row_addresses)

    # -- consistency ------------------------------------------------------------------------

    def is_consistent(self, indexes: bool = True) -> bool:
        """True when the arrays fit together; with ``indexes``, also when every index stays
        inside the array it points into (a scan of every array)."""
        rows = len(self.row_addresses)
        nodes = len(self.names)
        ranges = len(self.range_lows)
        files = len(self.full_paths)
        consistent = (
            len(self.row_files) == rows == len(self.row_lines) == len(self.row_columns)
            and nodes == len(self.parents) == len(self.ends) == len(self.inlined)
            and nodes == len(self.call_files) == len(self.call_lines) == len(self.call_columns)
            and nodes == len(self.decl_files) == len(self.decl_lines)
            and len(self.range_starts) == nodes + 1
            and ranges == len(self.range_highs)
            and len(self.root_lows) == len(self.root_highs) == len(self.root_nodes)
            and files == len(self.relative_paths) == len(self.file_numbers) >= 1
        )
        return consistent and (
            not indexes
            or (
                max(self.range_starts, default=0) <= ranges
                and max(self.root_nodes, default=0) < max(nodes, 1)
                and max(self.ends, default=0) <= nodes
                and max(self.parents, default=0) <= nodes
                and max(self.row_files, default=0) < files
                and max(self.call_files, default=0) < files
                and max(self.decl_files, default=0) < files
            )
        )


def narrow(values: Sequence[int]) -> array[int]:
    """``values`` (all >= 0) in the narrowest unsigned array type that holds them."""
    largest = max(values, default=0)
    for typecode, limit in (("B", 1 << 8), ("H", 1 << 16), ("I", 1 << 32)):
        if largest < limit:
            return array(typecode, values)
    return array("Q", values)
