"""Units, abbreviation tables and single DIEs of one image, read on demand and cached.

:class:`DieReader` is what the walks (:mod:`ltosyms.dwarf.walk`) and the builders above them
read through: unit headers and top DIEs, abbreviation tables compiled for a walk, and the odd
single DIE a walk did not keep (a name behind DW_AT_abstract_origin or DW_AT_specification in
another unit, for LTO's DW_FORM_ref_addr), where only that one DIE is parsed.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ltosyms.dwarf import forms as F
from ltosyms.dwarf.extract import FUNCTION_LAYOUT, TEXT, Values
from ltosyms.dwarf.forms import read_uleb
from ltosyms.dwarf.sections import DwarfSections
from ltosyms.dwarf.units import (
    Abbrev,
    CompiledAbbrevs,
    Unit,
    UnitHeader,
    UnitIndex,
    parse_abbrev_table,
    read_attributes,
    read_unit_header,
)
from ltosyms.dwarf.walk import FoundDies, walk_dies
from ltosyms.errors import DwarfError
from ltosyms.limits import MAX_NAME_HOPS

T = TypeVar("T")

# Positions of the fields names and declarations are read from (FunctionValues).
_NAME = FUNCTION_LAYOUT.index["name"]
_NAME_FORM = FUNCTION_LAYOUT.index["name_form"]
_LINKAGE_NAME = FUNCTION_LAYOUT.index["linkage_name"]
_LINKAGE_NAME_FORM = FUNCTION_LAYOUT.index["linkage_name_form"]
_ORIGIN = FUNCTION_LAYOUT.index["origin"]
_SPECIFICATION = FUNCTION_LAYOUT.index["specification"]
_DECL_FILE = FUNCTION_LAYOUT.index["decl_file"]
_DECL_LINE = FUNCTION_LAYOUT.index["decl_line"]
# What a read past the end of the bytes raises: a byte (IndexError), a NUL-terminated string
# (ValueError of bytes.index) or a fixed-size value (struct.error).
_READ_PAST_END = (IndexError, ValueError, struct.error)


K = TypeVar("K")
V = TypeVar("V")


class _Recent(Generic[K, V]):
    """A dict that keeps only its ``size`` most recently used entries."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)


class DieReader:
    """Units, abbreviation tables and single DIEs of one image, cached."""

    def __init__(self, sections: DwarfSections, *, every_unit: bool = False) -> None:
        """``every_unit``: the reader is about to walk every unit (the census), so a table a
        single DIE needs is parsed whole at once (the walk of its unit needs all of it), and
        the tables of all units are kept: a gcc LTO unit's DIEs point into hundreds of
        others, which would otherwise be parsed again as they leave the recent ones."""
        self.sections = sections
        self.every_unit = every_unit
        self.info = sections.require(".debug_info")
        self.abbrev_section = sections.require(".debug_abbrev")
        self.endian = sections.endian
        self.strings = sections.strings
        self._index: UnitIndex | None = None
        # gcc gives every unit its own table: over a whole-image index these would pile up,
        # so only the recently used ones stay (clang LTO units share theirs).
        self._compiled: _Recent[tuple[int, int, int, int, bool], CompiledAbbrevs] = _Recent(64)
        self._tables: _Recent[int, dict[int, Abbrev]] = _Recent(1 << 20 if every_unit else 256)
        self._partial: dict[int, dict[int, Abbrev]] = {}
        self._units: dict[int, Unit] = {}
        self._die_values: dict[int, Values | None] = {}

    def forget_units(self) -> None:
        """Drop the units read so far. Each refers back to this reader (its abbreviations), a
        cycle only a cyclic collection frees: a whole-program walk drops them when done, so
        that the reader and all it read (a million objects) go by reference counting."""
        self._units.clear()

    @property
    def index(self) -> UnitIndex:
        if self._index is None:
            self._index = UnitIndex(self.sections)
        return self._index

    def header(self, unit_offset: int) -> UnitHeader:
        return read_unit_header(self.info, unit_offset, self.endian)

    def compiled_abbrevs(self, header: UnitHeader, whole_program: bool = False) -> CompiledAbbrevs:
        """The unit's abbreviations compiled for the unit walk, or with ``whole_program`` for
        the whole-program walk (:mod:`ltosyms.dwarf.walk`)."""
        key = (
            header.abbrev_offset,
            header.offset_size,
            header.address_size,
            header.version,
            whole_program,
        )
        compiled = self._compiled.get(key)
        if compiled is None:
            table = self._tables.get(header.abbrev_offset)
            if table is None:
                table = parse_abbrev_table(self.abbrev_section, header.abbrev_offset)
                self._tables.put(header.abbrev_offset, table)
            compiled = CompiledAbbrevs(table, header, self.endian, whole_program=whole_program)
            self._compiled.put(key, compiled)
        return compiled

    def abbrev(self, header: UnitHeader, code: int) -> Abbrev | None:
        """One abbreviation, parsing the table only as far as needed if not parsed yet."""
        offset = header.abbrev_offset
        table = self._tables.get(offset)
        if table is not None:
            return table.get(code)
        partial = self._partial.get(offset)
        if partial is not None and code in partial:
            return partial[code]
        if partial is not None or self.every_unit:
            # Units sharing a table (clang LTO) use different codes: parse it whole, once.
            table = parse_abbrev_table(self.abbrev_section, offset)
            self._tables.put(offset, table)
            return table.get(code)
        partial = self._partial[offset] = parse_abbrev_table(
            self.abbrev_section, offset, stop_at=code
        )
        return partial.get(code)

    def unit(self, unit_offset: int, data: bytes | None = None) -> Unit:
        """The unit at ``unit_offset`` with its top DIE read. ``data``, when given, is the
        whole unit's bytes (the caller is about to walk it anyway)."""
        unit = self._units.get(unit_offset)
        if unit is not None:
            return unit
        header = self.header(unit_offset)
        unit = Unit(self.sections, header, self)
        if data is None:
            self._read_die(
                unit_offset,
                header.end,
                lambda chunk: unit.read_top(chunk, unit_offset),
                f"unit at {unit_offset:#x}: top DIE",
                window=4096,
            )
        else:
            # The caller walks the unit next and needs the whole table anyway: parse it now
            # rather than its first declarations now and all of it again later.
            self.compiled_abbrevs(header)
            _read_top(unit, data)
        self._units[unit_offset] = unit
        return unit

    def unit_bytes(self, unit_offset: int) -> bytes:
        header = self.header(unit_offset)
        return self.info.read(unit_offset, header.end - unit_offset)

    def unit_dies(self, unit_offset: int) -> tuple[Unit, FoundDies]:
        """The unit at ``unit_offset`` and what the unit walk keeps of it."""
        data = self.unit_bytes(unit_offset)
        unit = self.unit(unit_offset, data)
        return unit, walk_dies(unit, data, unit.abbrevs)

    def program_dies(self, unit_offset: int) -> tuple[Unit, FoundDies]:
        """The unit at ``unit_offset`` and what the whole-program walk keeps of it."""
        header = self.header(unit_offset)
        data = self.info.read(unit_offset, header.end - unit_offset)
        # The whole table first: reading the top DIE then finds it parsed.
        abbrevs = self.compiled_abbrevs(header, whole_program=True)
        unit = self._units.get(unit_offset)
        if unit is None:
            unit = Unit(self.sections, header, self)
            _read_top(unit, data)
            self._units[unit_offset] = unit
        return unit, walk_dies(unit, data, abbrevs)

    def attributes_at(self, die_offset: int) -> tuple[Unit, int, dict[int, tuple[int, Any]]]:
        """The unit, tag and every attribute (``{attribute: (form, raw value)}``) of the DIE
        at ``die_offset``, any unit, any tag: the general reader, for the odd DIE a walk did
        not keep (a variable's declaration in another unit)."""
        unit = self.unit(self.index.unit_containing(die_offset))
        header = unit.header
        if die_offset >= header.end:
            raise DwarfError(f"DIE offset {die_offset:#x} lies past the last unit")

        def parse(data: bytes) -> tuple[Unit, int, dict[int, tuple[int, Any]]]:
            code, position = read_uleb(data, 0)
            abbrev = self.abbrev(header, code)
            if abbrev is None:
                raise DwarfError(f"DIE at {die_offset:#x} uses unknown abbreviation {code}")
            values, _ = read_attributes(data, position, abbrev.specs, header, self.endian)
            return unit, abbrev.tag, values

        return self._read_die(die_offset, header.end, parse, f"DIE at {die_offset:#x}")

    def values_at(self, die_offset: int) -> Values | None:
        """What the unit walk keeps of the subprogram-like DIE at ``die_offset`` (any unit);
        None for a DIE of another kind."""
        if die_offset in self._die_values:
            return self._die_values[die_offset]
        unit = self.unit(self.index.unit_containing(die_offset))

        def parse(data: bytes) -> Values | None:
            code, position = read_uleb(data, 0)
            extract = unit.abbrevs.extract
            if 0 < code < len(extract) and (function := extract[code]) is not None:
                return function(data, position, unit)[1]
            if code not in unit.abbrevs.table:
                raise DwarfError(f"DIE at {die_offset:#x} uses unknown abbreviation {code}")
            return None

        values = self._read_die(die_offset, unit.header.end, parse, f"DIE at {die_offset:#x}")
        self._die_values[die_offset] = values
        return values

    def _read_die(
        self, offset: int, end: int, parse: Callable[[bytes], T], what: str, window: int = 1024
    ) -> T:
        """``parse`` of the ``.debug_info`` bytes from ``offset`` on: read in a window that
        grows while the parse runs past it, up to ``end`` (the unit's end). A read past the
        bytes is an IndexError (a byte), ValueError (a NUL-terminated string) or struct.error
        (a fixed-size value): a longer window, or :class:`DwarfError` once the unit's bytes
        run out."""
        while True:
            data = self.info.read_to_end(offset, min(window, end - offset))
            try:
                return parse(data)
            except _READ_PAST_END as error:
                if len(data) >= end - offset:
                    raise DwarfError(f"{what} is truncated ({error})") from None
                window *= 16

    def name_of(self, values: Values, local: dict[int, Values]) -> tuple[str | None, Values]:
        """(name, values of the DIE that holds it) following abstract origins and
        specifications; ``values`` and ``local`` (the current unit's subprograms) are laid out
        as :class:`~ltosyms.dwarf.extract.FunctionValues`."""
        current: Values | None = values
        for _ in range(MAX_NAME_HOPS):
            if current is None:
                return None, values
            # The linkage name first, as llvm-symbolizer names functions (in C it differs
            # from DW_AT_name only for gcc's builtins: __builtin_memcpy -> memcpy).
            name = self.text(current[_LINKAGE_NAME_FORM], current[_LINKAGE_NAME])
            if name is None:
                name = self.text(current[_NAME_FORM], current[_NAME])
            if name is not None:
                return name, current
            reference = current[_ORIGIN] or current[_SPECIFICATION]
            if reference is None:
                return None, current
            target = local.get(reference)
            current = target if target is not None else self.values_at(reference)
        return None, values

    def text(self, form: int, raw: Any) -> str | None:
        """A name as an extractor left it (``name_form`` and ``name`` of the values)."""
        if raw is None:
            return None
        if form == F.FORM_STRP:
            return self.strings.get(raw)
        if form == TEXT:
            return raw  # type: ignore[no-any-return]
        if form == F.FORM_STRING:
            return bytes(raw).decode("utf-8", "replace")
        if form == F.FORM_LINE_STRP:
            return self.sections.line_strings.get(raw)
        return None

    def declaration_of(
        self, values: Values, local: dict[int, Values]
    ) -> tuple[int | None, int | None, int | None]:
        """(decl_file, decl_line, offset of the DIE holding them), following references."""
        current: Values | None = values
        reference: int | None = None
        for _ in range(MAX_NAME_HOPS):
            if current is None:
                break
            if current[_DECL_LINE] is not None or current[_DECL_FILE] is not None:
                return current[_DECL_FILE], current[_DECL_LINE], reference
            reference = current[_ORIGIN] or current[_SPECIFICATION]
            if reference is None:
                break
            target = local.get(reference)
            current = target if target is not None else self.values_at(reference)
        return None, None, None


def _read_top(unit: Unit, data: bytes) -> None:
    """Read the top DIE of ``unit`` from ``data``, the whole unit's bytes."""
    try:
        unit.read_top(data, unit.base)
    except _READ_PAST_END as error:
        raise DwarfError(f"unit at {unit.base:#x}: top DIE is truncated ({error})") from None
