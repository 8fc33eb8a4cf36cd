"""Walk one unit's DIEs and keep its functions: subprograms with code, and the tree of
inlined subroutines inside them, with their ranges and call sites.

Only DW_TAG_subprogram and DW_TAG_inlined_subroutine DIEs are read (through generated
extractors, :mod:`ltosyms.dwarf.codegen`); every other DIE is skipped by byte count, and
every other subtree is jumped over with DW_AT_sibling when the producer emitted one (gcc does;
clang does not, and then the subtree is walked without reading anything). Lexical blocks are
walked into: they hold inlined calls. Names come through DW_AT_abstract_origin and
DW_AT_specification chains, within the unit or, for LTO's DW_FORM_ref_addr, in another unit,
where only the one DIE is parsed (:meth:`DieReader.values_at`).

:func:`walk_program` is the whole-image variant (:meth:`DieReader.program_dies`): every
subprogram, with code or not, every inlined subroutine and every variable whose location is an
expression, with their real nesting.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ltosyms.dwarf import forms as F
from ltosyms.dwarf.codegen import (
    TEXT,
    V_DECL_FILE,
    V_DECL_LINE,
    V_LINKAGE_NAME,
    V_LINKAGE_NAME_FORM,
    V_NAME,
    V_NAME_FORM,
    V_ORIGIN,
    V_SIBLING,
    V_SPECIFICATION,
)
from ltosyms.dwarf.forms import read_uleb
from ltosyms.dwarf.sections import DwarfSections
from ltosyms.dwarf.units import (
    ACT_ENTER,
    ACT_ENTER_FIXED,
    ACT_FUNCTION,
    ACT_INLINED,
    ACT_JUMP,
    ACT_JUMP_FIXED,
    ACT_LEAF,
    ACT_LEAF_FIXED,
    ACT_NAME,
    ACT_VARIABLE,
    Abbrev,
    CompiledAbbrevs,
    Unit,
    UnitHeader,
    UnitIndex,
    parse_abbrev_table,
    read_attributes,
    read_unit_header,
)
from ltosyms.errors import DwarfError

Values = tuple[Any, ...]

# How many DW_AT_abstract_origin / DW_AT_specification hops a name may take; real chains are
# 1-3 long (inlined -> abstract -> declaration); more means a reference cycle in bad data.
_MAX_NAME_HOPS = 8


@dataclass(slots=True)
class RawFunctions:
    """What :func:`walk_unit` found: function DIEs in preorder and every subprogram's values."""

    offsets: list[int]  # .debug_info offset of each function DIE
    inlined: list[bool]  # True for DW_TAG_inlined_subroutine
    parents: list[int]  # index of the enclosing function DIE, -1 for subprograms
    values: list[Values]
    subprograms: dict[int, Values]  # every DW_TAG_subprogram of the unit, by offset


@dataclass(slots=True)
class ProgramDies:
    """What :func:`walk_program` found, in preorder: every DW_TAG_subprogram, every
    DW_TAG_inlined_subroutine and every DW_TAG_variable whose location is an expression."""

    offsets: list[int]  # .debug_info offset of each DIE
    tags: list[int]  # F.TAG_SUBPROGRAM, F.TAG_INLINED_SUBROUTINE or F.TAG_VARIABLE
    parents: list[int]  # index of the enclosing subprogram or inlined subroutine, -1 for none
    values: list[Values]  # dwarf_codegen V_* layout; VAR_* layout for variables


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

    def __init__(self, sections: DwarfSections) -> None:
        self.sections = sections
        self.info = sections.require(".debug_info")
        self.abbrev_section = sections.require(".debug_abbrev")
        self.endian = sections.endian
        self.strings = sections.strings
        self._index: UnitIndex | None = None
        # gcc gives every unit its own table: over a whole-image index these would pile up,
        # so only the recently used ones stay (clang LTO units share theirs).
        self._compiled: _Recent[tuple[int, int, int, int, bool], CompiledAbbrevs] = _Recent(64)
        self._tables: _Recent[int, dict[int, Abbrev]] = _Recent(256)
        self._partial: dict[int, dict[int, Abbrev]] = {}
        self._units: dict[int, Unit] = {}
        self._die_values: dict[int, Values | None] = {}

    @property
    def index(self) -> UnitIndex:
        if self._index is None:
            self._index = UnitIndex(self.sections)
        return self._index

    def header(self, unit_offset: int) -> UnitHeader:
        return read_unit_header(self.info, unit_offset, self.endian)

    def compiled_abbrevs(self, header: UnitHeader, whole_program: bool = False) -> CompiledAbbrevs:
        """The unit's abbreviations compiled for :func:`walk_unit`, or with ``whole_program``
        for :func:`walk_program`."""
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
        if partial is not None:
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
            window = 4096
            while True:
                chunk = self.info.read_to_end(unit_offset, min(window, header.end - unit_offset))
                try:
                    unit.read_top(chunk, unit_offset)
                    break
                except (IndexError, ValueError) as error:
                    if len(chunk) >= header.end - unit_offset:
                        raise DwarfError(
                            f"unit at {unit_offset:#x}: top DIE is truncated ({error})"
                        ) from None
                    window *= 16
        else:
            # The caller walks the unit next and needs the whole table anyway: parse it now
            # rather than its first declarations now and all of it again later.
            self.compiled_abbrevs(header)
            unit.read_top(data, unit_offset)
        self._units[unit_offset] = unit
        return unit

    def unit_bytes(self, unit_offset: int) -> bytes:
        header = self.header(unit_offset)
        return self.info.read(unit_offset, header.end - unit_offset)

    def program_dies(self, unit_offset: int) -> tuple[Unit, ProgramDies]:
        """The unit at ``unit_offset`` and what :func:`walk_program` finds in it."""
        header = self.header(unit_offset)
        data = self.info.read(unit_offset, header.end - unit_offset)
        # The whole table first: reading the top DIE then finds it parsed.
        abbrevs = self.compiled_abbrevs(header, whole_program=True)
        unit = self._units.get(unit_offset)
        if unit is None:
            unit = Unit(self.sections, header, self)
            try:
                unit.read_top(data, unit_offset)
            except (IndexError, ValueError, struct.error) as error:
                raise DwarfError(
                    f"unit at {unit_offset:#x}: top DIE is truncated ({error})"
                ) from None
            self._units[unit_offset] = unit
        return unit, walk_program(unit, data, abbrevs)

    def attributes_at(self, die_offset: int) -> tuple[Unit, int, dict[int, tuple[int, Any]]]:
        """The unit, tag and every attribute (``{attribute: (form, raw value)}``) of the DIE
        at ``die_offset``, any unit, any tag: the general reader, for the odd DIE a walk did
        not keep (a variable's declaration in another unit)."""
        unit = self.unit(self.index.unit_containing(die_offset))
        header = unit.header
        end = header.end
        if die_offset >= end:
            raise DwarfError(f"DIE offset {die_offset:#x} lies past the last unit")
        window = 1024
        while True:
            data = self.info.read_to_end(die_offset, min(window, end - die_offset))
            try:
                code, position = read_uleb(data, 0)
                abbrev = self.abbrev(header, code)
                if abbrev is None:
                    raise DwarfError(f"DIE at {die_offset:#x} uses unknown abbreviation {code}")
                values, _ = read_attributes(data, position, abbrev.specs, header, self.endian)
                return unit, abbrev.tag, values
            except (IndexError, ValueError, struct.error):
                if len(data) >= end - die_offset:
                    raise DwarfError(f"DIE at {die_offset:#x} is truncated") from None
                window *= 16

    def values_at(self, die_offset: int) -> Values | None:
        """The extractor values of the subprogram-like DIE at ``die_offset`` (any unit)."""
        if die_offset in self._die_values:
            return self._die_values[die_offset]
        unit = self.unit(self.index.unit_containing(die_offset))
        end = unit.header.end
        window = 1024
        values: Values | None = None
        while True:
            data = self.info.read_to_end(die_offset, min(window, end - die_offset))
            try:
                code, position = read_uleb(data, 0)
                extract = unit.abbrevs.extract
                if 0 < code < len(extract) and extract[code] is not None:
                    function = extract[code]
                    assert function is not None
                    values = function(data, position, unit)[1]
                elif code not in unit.abbrevs.table:
                    raise DwarfError(f"DIE at {die_offset:#x} uses unknown abbreviation {code}")
                break
            except (IndexError, ValueError):
                if len(data) >= end - die_offset:
                    raise DwarfError(f"DIE at {die_offset:#x} is truncated") from None
                window *= 16
        self._die_values[die_offset] = values
        return values

    def name_of(self, values: Values, local: dict[int, Values]) -> tuple[str | None, Values]:
        """(name, values of the DIE that holds it) following abstract origins and
        specifications; ``local`` holds the values of the current unit's subprograms."""
        current: Values | None = values
        for _ in range(_MAX_NAME_HOPS):
            if current is None:
                return None, values
            # The linkage name first, as llvm-symbolizer names functions (in C it differs
            # from DW_AT_name only for gcc's builtins: __builtin_memcpy -> memcpy).
            name = self.text(current[V_LINKAGE_NAME_FORM], current[V_LINKAGE_NAME])
            if name is None:
                name = self.text(current[V_NAME_FORM], current[V_NAME])
            if name is not None:
                return name, current
            reference = current[V_ORIGIN] or current[V_SPECIFICATION]
            if reference is None:
                return None, current
            target = local.get(reference)
            current = target if target is not None else self.values_at(reference)
        return None, values

    def text(self, form: int, raw: Any) -> str | None:
        """A name as an extractor left it (:data:`ltosyms.dwarf.codegen.V_NAME_FORM`)."""
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
        for _ in range(_MAX_NAME_HOPS):
            if current is None:
                break
            if current[V_DECL_LINE] is not None or current[V_DECL_FILE] is not None:
                return current[V_DECL_FILE], current[V_DECL_LINE], reference
            reference = current[V_ORIGIN] or current[V_SPECIFICATION]
            if reference is None:
                break
            target = local.get(reference)
            current = target if target is not None else self.values_at(reference)
        return None, None, None


def walk_unit(unit: Unit, data: bytes) -> RawFunctions:
    """Every function DIE of the unit (``data`` is the unit's bytes, from its header on).

    Long on purpose: this is the inner loop over every DIE of the unit, with each abbreviation
    action handled inline (no call per DIE unless the abbreviation needs one).
    """
    offsets: list[int] = []
    inlined: list[bool] = []
    parents: list[int] = []
    values: list[Values] = []
    subprograms: dict[int, Values] = {}
    raw = RawFunctions(offsets, inlined, parents, values, subprograms)
    if not unit.top_has_children:
        return raw
    abbrevs: CompiledAbbrevs = unit.abbrevs
    action = abbrevs.action
    fixed = abbrevs.fixed
    skip = abbrevs.skip
    sibling_at = abbrevs.sibling_at
    sibling_read = abbrevs.sibling_read
    extract: list[Callable[[bytes, int, Any], tuple[int, Values]] | None] = abbrevs.extract
    children = abbrevs.children
    unit_base = unit.base
    end = unit.header.end - unit_base
    position = unit.children_start - unit_base
    # One stack entry per open DIE with children: the index of the innermost enclosing
    # function node (-1 outside any function). An abbreviation code past the table's end
    # raises IndexError like truncated data does.
    stack = [-1]
    try:
        while position < end:
            start = position
            code = data[position]
            position += 1
            if code > 127:
                code, position = read_uleb(data, start)
            if code == 0:
                stack.pop()
                if not stack:
                    break
                continue
            kind = action[code]
            if kind == ACT_LEAF_FIXED:
                position += fixed[code]
            elif kind == ACT_LEAF:
                position = skip[code](data, position)  # type: ignore[misc]
            elif kind == ACT_ENTER_FIXED:
                position += fixed[code]
                stack.append(stack[-1])
            elif kind == ACT_INLINED:
                position, found = extract[code](data, position, unit)  # type: ignore[misc]
                offsets.append(unit_base + start)
                inlined.append(True)
                parents.append(stack[-1])
                values.append(found)
                if children[code]:
                    stack.append(len(values) - 1)
            elif kind == ACT_JUMP_FIXED:
                position = sibling_read[code](data, position + sibling_at[code])[0]
                if position <= start:
                    raise DwarfError(f"DW_AT_sibling at {unit_base + start:#x} points back")
            elif kind == ACT_FUNCTION:
                position, found = extract[code](data, position, unit)  # type: ignore[misc]
                die_offset = unit_base + start
                subprograms[die_offset] = found
                offsets.append(die_offset)
                inlined.append(False)
                # A subprogram is its own root even when nested (its code is its own).
                parents.append(-1)
                values.append(found)
                if children[code]:
                    stack.append(len(values) - 1)
            elif kind == ACT_NAME:
                position, found = extract[code](data, position, unit)  # type: ignore[misc]
                subprograms[unit_base + start] = found
                if children[code]:
                    sibling = found[V_SIBLING]
                    if sibling is not None and sibling > unit_base + start:
                        position = sibling - unit_base
                    else:
                        stack.append(stack[-1])
            elif kind == ACT_ENTER:
                position = skip[code](data, position)  # type: ignore[misc]
                stack.append(stack[-1])
            elif kind == ACT_JUMP:
                position = sibling_read[code](data, position)
                if position <= start:
                    raise DwarfError(f"DW_AT_sibling at {unit_base + start:#x} points back")
            else:
                raise DwarfError(
                    f"unit at {unit_base:#x}: DIE at {unit_base + start:#x} uses unknown "
                    f"abbreviation {code}"
                )
    except (IndexError, ValueError) as error:
        raise DwarfError(f"unit at {unit_base:#x}: DIEs are truncated ({error})") from None
    return raw


def walk_program(unit: Unit, data: bytes, abbrevs: CompiledAbbrevs) -> ProgramDies:
    """Every subprogram, inlined subroutine and variable with a location expression of the unit
    (``data`` is the unit's bytes from its header on; ``abbrevs`` its table compiled with
    ``whole_program``), for a census of the whole image.

    Unlike :func:`walk_unit`, subprograms without code (abstract instances, declarations) are
    walked into too (their static variables live there), and each DIE's parent is the real
    enclosing subprogram or inlined subroutine, nested subprograms included. The loop is kept
    flat for the same reason as :func:`walk_unit`'s.
    """
    offsets: list[int] = []
    tags: list[int] = []
    parents: list[int] = []
    values: list[Values] = []
    found_dies = ProgramDies(offsets, tags, parents, values)
    if not unit.top_has_children:
        return found_dies
    action = abbrevs.action
    fixed = abbrevs.fixed
    skip = abbrevs.skip
    sibling_at = abbrevs.sibling_at
    sibling_read = abbrevs.sibling_read
    extract: list[Callable[[bytes, int, Any], tuple[int, Values]] | None] = abbrevs.extract
    children = abbrevs.children
    unit_base = unit.base
    end = unit.header.end - unit_base
    position = unit.children_start - unit_base
    # One stack entry per open DIE with children: the index of the innermost enclosing
    # subprogram or inlined subroutine (-1 outside any).
    stack = [-1]
    try:
        while position < end:
            start = position
            code = data[position]
            position += 1
            if code > 127:
                code, position = read_uleb(data, start)
            if code == 0:
                stack.pop()
                if not stack:
                    break
                continue
            kind = action[code]
            if kind == ACT_LEAF_FIXED:
                position += fixed[code]
            elif kind == ACT_LEAF:
                position = skip[code](data, position)  # type: ignore[misc]
            elif kind == ACT_ENTER_FIXED:
                position += fixed[code]
                stack.append(stack[-1])
            elif kind == ACT_INLINED:
                position, found = extract[code](data, position, unit)  # type: ignore[misc]
                offsets.append(unit_base + start)
                tags.append(F.TAG_INLINED_SUBROUTINE)
                parents.append(stack[-1])
                values.append(found)
                if children[code]:
                    stack.append(len(values) - 1)
            elif kind == ACT_JUMP_FIXED:
                position = sibling_read[code](data, position + sibling_at[code])[0]
                if position <= start:
                    raise DwarfError(f"DW_AT_sibling at {unit_base + start:#x} points back")
            elif kind in (ACT_FUNCTION, ACT_NAME):
                position, found = extract[code](data, position, unit)  # type: ignore[misc]
                offsets.append(unit_base + start)
                tags.append(F.TAG_SUBPROGRAM)
                parents.append(stack[-1])
                values.append(found)
                if children[code]:
                    stack.append(len(values) - 1)
            elif kind == ACT_VARIABLE:
                position, found = extract[code](data, position, unit)  # type: ignore[misc]
                offsets.append(unit_base + start)
                tags.append(F.TAG_VARIABLE)
                parents.append(stack[-1])
                values.append(found)
                if children[code]:
                    stack.append(stack[-1])
            elif kind == ACT_ENTER:
                position = skip[code](data, position)  # type: ignore[misc]
                stack.append(stack[-1])
            elif kind == ACT_JUMP:
                position = sibling_read[code](data, position)
                if position <= start:
                    raise DwarfError(f"DW_AT_sibling at {unit_base + start:#x} points back")
            else:
                raise DwarfError(
                    f"unit at {unit_base:#x}: DIE at {unit_base + start:#x} uses unknown "
                    f"abbreviation {code}"
                )
    except (IndexError, ValueError) as error:
        raise DwarfError(f"unit at {unit_base:#x}: DIEs are truncated ({error})") from None
    return found_dies
