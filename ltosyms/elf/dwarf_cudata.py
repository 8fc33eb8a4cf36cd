"""Everything the resolver keeps from one unit, as compact arrays, and the lookups over them.

A :class:`CuData` is built once from the DWARF (:func:`ltosyms.elf.dwarf.parse_cu`) and can be
turned into bytes and back (:meth:`CuData.to_bytes`, :meth:`CuData.from_bytes`) so the on-disk
index can keep it per (build id, unit offset). Loading is a ``marshal.loads`` and a few
``array.frombytes``: no DWARF is touched when a unit comes from the index.

Layout:
- files: full path and source-relative path per line-table file number (then, past
  ``line_file_count``, the declaration files of functions declared in other units).
- line rows sorted by address; a row whose file is ``END_OF_SEQUENCE`` ends a sequence.
- functions in preorder (a subprogram, then the inlined calls inside it, depth first); node
  ``i``'s subtree is ``i + 1 .. ends[i] - 1``; ``parents[i]`` is -1 for subprograms.
- each node's ranges are ``range_lows/highs[range_starts[i]:range_starts[i + 1]]``.
- subprogram ranges again, sorted by start (``root_*``): the address -> function index.
"""

from __future__ import annotations

import marshal
import sys
from array import array
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

from ltosyms.elf.dwarf_line import find_row
from ltosyms.errors import CacheError

FORMAT_VERSION = 1
_MAGIC = "ltosyms-cu"
NO_VALUE = 0xFFFFFFFF  # "absent" in the unsigned arrays (call file, decl file)


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """One entry of an inline chain: a function and the source position inside it.

    ``function`` is the name tools print: the DWARF name, except for the outermost entry when
    the resolver has the symbol table, where it is the ELF symbol holding the address, as
    llvm-symbolizer prints it (``foo.cold``, ``foo.isra.0``, ``foo.llvm.123``, assembly
    functions without DWARF). ``dwarf_function`` is always the DWARF name (abstract origin /
    specification resolved)."""

    function: str | None
    file: str | None  # relative to the kernel source tree ("lib/dump_stack.c")
    full_path: str | None  # as DWARF has it, joined with its directory
    line: int | None  # None: no line information (never invented)
    column: int | None
    inlined: bool  # True for every entry except the outermost (the real function)
    dwarf_function: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionExtent:
    """The DWARF function (DW_TAG_subprogram with code) that holds an address."""

    name: str | None
    ranges: tuple[tuple[int, int], ...]  # [low, high) link addresses, entry range first
    entry_address: int  # DW_AT_low_pc, or the start of the first range
    decl_file: str | None  # source-relative
    decl_line: int | None
    cu_offset: int


@dataclass(frozen=True, slots=True)
class CuData:
    cu_offset: int
    name: str | None  # DW_AT_name of the unit
    comp_dir: str | None
    producer_is_clang: bool
    full_paths: tuple[str | None, ...]
    relative_paths: tuple[str | None, ...]
    line_file_count: int
    row_addresses: array[int]
    row_files: array[int]
    row_lines: array[int]
    row_columns: array[int]
    names: tuple[str | None, ...]
    parents: array[int]
    ends: array[int]
    inlined: array[int]
    call_files: array[int]
    call_lines: array[int]
    call_columns: array[int]
    decl_files: array[int]
    decl_lines: array[int]
    range_starts: array[int]
    range_lows: array[int]
    range_highs: array[int]
    root_lows: array[int]
    root_highs: array[int]
    root_nodes: array[int]

    # -- lookups -----------------------------------------------------------------------------

    def line_row(self, link_address: int) -> int | None:
        """Index of the row that covers ``link_address``: the last row at or before it in
        its sequence (llvm DWARFDebugLine::LineTable::findRowInSeq), None outside sequences."""
        return find_row(self.row_addresses, self.row_files, link_address)

    def function_node(self, link_address: int) -> int | None:
        """The subprogram node whose ranges hold ``link_address``."""
        lows = self.root_lows
        position = bisect_right(lows, link_address) - 1
        # Ranges of different subprograms do not overlap in sane DWARF; look back a little in
        # case a tombstoned or zero-length range sorts in between.
        for candidate in range(position, max(position - 8, -1), -1):
            if link_address < self.root_highs[candidate]:
                return self.root_nodes[candidate]
        return None

    def node_contains(self, node: int, link_address: int) -> bool:
        lows, highs = self.range_lows, self.range_highs
        for index in range(self.range_starts[node], self.range_starts[node + 1]):
            if lows[index] <= link_address < highs[index]:
                return True
        return False

    def inline_chain(self, link_address: int) -> list[int]:
        """Function nodes holding ``link_address``, innermost first (empty: no function)."""
        root = self.function_node(link_address)
        if root is None:
            return []
        chain = [root]
        node = root
        ends = self.ends
        while True:
            child = node + 1
            end = ends[node]
            found = -1
            while child < end:
                if self.node_contains(child, link_address):
                    found = child
                    break
                child = ends[child]
            if found < 0:
                break
            chain.append(found)
            node = found
        chain.reverse()
        return chain

    def locations(
        self, link_address: int, outer_name: Callable[[int, bool], str | None] | None = None
    ) -> tuple[SourceLocation, ...]:
        """The inline chain at ``link_address``, innermost first, as llvm-symbolizer gives it:
        the innermost entry takes the line table's row, each outer entry the call site
        (DW_AT_call_file/line/column) of the entry inside it. ``outer_name(address,
        within_size)``, when given, names the outermost entry from the ELF symbols
        (:class:`ltosyms.elf.dwarf_symnames.OuterNames`); where DWARF has no function, the
        nearest symbol names it even past its size."""
        chain = self.inline_chain(link_address)
        row = self.line_row(link_address)
        if not chain and row is None:
            return ()
        if row is not None:
            file_index = self.row_files[row]
            line = self.row_lines[row] or None
            column = self.row_columns[row] or None
        else:
            file_index, line, column = NO_VALUE, None, None
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
        if file_index < len(self.full_paths):
            full, relative = self.full_paths[file_index], self.relative_paths[file_index]
        else:
            full = relative = None
        return SourceLocation(
            function, relative, full, line, column if line else None, inlined, dwarf_function
        )

    def function_extent(self, link_address: int) -> FunctionExtent | None:
        node = self.function_node(link_address)
        return None if node is None else self._extent(node)

    def functions(self) -> list[FunctionExtent]:
        """Every subprogram with code in the unit, in DWARF order."""
        return [
            self._extent(node)
            for node in range(len(self.names))
            if self.parents[node] < 0 and self.range_starts[node] < self.range_starts[node + 1]
        ]

    def _extent(self, node: int) -> FunctionExtent:
        start, stop = self.range_starts[node], self.range_starts[node + 1]
        ranges = tuple(zip(self.range_lows[start:stop], self.range_highs[start:stop], strict=True))
        decl_file = self.decl_files[node]
        decl_path = self.relative_paths[decl_file] if decl_file < len(self.relative_paths) else None
        return FunctionExtent(
            name=self.names[node],
            ranges=ranges,
            entry_address=ranges[0][0] if ranges else 0,
            decl_file=decl_path,
            decl_line=self.decl_lines[node] or None,
            cu_offset=self.cu_offset,
        )

    @property
    def function_count(self) -> int:
        return len(self.names)

    @property
    def row_count(self) -> int:
        return len(self.row_addresses)

    # -- bytes ---------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        arrays = tuple(getattr(self, name).tobytes() for name in _ARRAYS)
        return marshal.dumps(
            (
                _MAGIC,
                FORMAT_VERSION,
                sys.byteorder,
                self.cu_offset,
                self.name,
                self.comp_dir,
                self.producer_is_clang,
                self.full_paths,
                self.relative_paths,
                self.line_file_count,
                self.names,
                arrays,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> CuData:
        """Rebuild a :class:`CuData`; raises :class:`CacheError` on foreign or damaged bytes."""
        try:
            record = marshal.loads(data)
            (
                magic,
                version,
                byteorder,
                cu_offset,
                name,
                comp_dir,
                producer_is_clang,
                full_paths,
                relative_paths,
                line_file_count,
                names,
                arrays,
            ) = record
        except (EOFError, ValueError, TypeError) as error:
            raise CacheError(f"unit record is damaged ({error})") from None
        if magic != _MAGIC or version != FORMAT_VERSION or byteorder != sys.byteorder:
            raise CacheError("unit record has a foreign format")
        if not (
            isinstance(arrays, tuple)
            and len(arrays) == len(_ARRAYS)
            and isinstance(names, tuple)
            and isinstance(full_paths, tuple)
            and isinstance(relative_paths, tuple)
        ):
            raise CacheError("unit record is damaged")
        fields = {}
        try:
            for field, raw in zip(_ARRAYS, arrays, strict=True):
                values = array(_ARRAYS[field])
                values.frombytes(raw)
                fields[field] = values
        except (TypeError, ValueError) as error:
            raise CacheError(f"unit record is damaged ({error})") from None
        data_record = cls(
            cu_offset=cu_offset,
            name=name,
            comp_dir=comp_dir,
            producer_is_clang=bool(producer_is_clang),
            full_paths=full_paths,
            relative_paths=relative_paths,
            line_file_count=line_file_count,
            names=names,
            **fields,
        )
        data_record.check()
        return data_record

    def check(self) -> None:
        """Raise :class:`CacheError` unless the arrays fit together."""
        rows = len(self.row_addresses)
        nodes = len(self.names)
        ranges = len(self.range_lows)
        consistent = (
            len(self.row_files) == rows == len(self.row_lines) == len(self.row_columns)
            and nodes
            == len(self.parents)
            == len(self.ends)
            == len(self.inlined)
            == len(self.call_files)
            == len(self.call_lines)
            == len(self.call_columns)
            == len(self.decl_files)
            == len(self.decl_lines)
            and len(self.range_starts) == nodes + 1
            and ranges == len(self.range_highs)
            and (not nodes or self.range_starts[nodes] == ranges)
            and len(self.root_lows) == len(self.root_highs) == len(self.root_nodes)
            and len(self.full_paths) == len(self.relative_paths)
            and max(self.root_nodes, default=0) <= max(nodes - 1, 0)
            and max(self.ends, default=0) <= nodes
            and max(self.range_starts, default=0) <= ranges
        )
        if not consistent:
            raise CacheError(f"unit record for {self.cu_offset:#x} is inconsistent")


_ARRAYS = {
    "row_addresses": "Q",
    "row_files": "I",
    "row_lines": "I",
    "row_columns": "I",
    "parents": "i",
    "ends": "I",
    "inlined": "B",
    "call_files": "I",
    "call_lines": "I",
    "call_columns": "I",
    "decl_files": "I",
    "decl_lines": "I",
    "range_starts": "I",
    "range_lows": "Q",
    "range_highs": "Q",
    "root_lows": "Q",
    "root_highs": "Q",
    "root_nodes": "I",
}
