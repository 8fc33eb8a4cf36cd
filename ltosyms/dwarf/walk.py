"""The walk over one unit's DIEs: the inner loop of both the resolver and the census.

Only the DIEs the abbreviation table's actions name are read (through generated extractors,
:mod:`ltosyms.dwarf.extract`); every other DIE is skipped by byte count, and every other subtree
is jumped over with DW_AT_sibling when the producer emitted one (gcc does; clang does not,
and then the subtree is walked without reading anything). Lexical blocks are walked into: they
hold inlined calls.

One loop serves two walks; what differs is the table it is given
(:class:`~ltosyms.dwarf.units.CompiledAbbrevs`):

- the unit walk (what the resolver keeps of a unit): subprograms with code and the inlined
  subroutines inside them. A subprogram is the root of its own tree even when nested (its
  code is its own); subprograms without code (abstract instances, declarations) are only
  remembered for names, and their subtrees jumped over when they have a sibling.
- the whole-program walk (:mod:`ltosyms.dwarf.census`): every subprogram, with code or not,
  every inlined subroutine and every variable whose location is an expression, each under
  the subprogram or inlined subroutine that really encloses it (static variables of inline
  functions live in their abstract instances).

Since the actions tell the walks apart, the loop tests no mode: a table compiled for one walk
never holds the other walk's actions.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ltosyms.dwarf import forms as F
from ltosyms.dwarf.extract import FUNCTION_LAYOUT, Values
from ltosyms.dwarf.forms import read_uleb
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
    ACT_SUBPROGRAM,
    ACT_VARIABLE,
)
from ltosyms.errors import DwarfError

if TYPE_CHECKING:
    from ltosyms.dwarf.units import CompiledAbbrevs, Unit
from ltosyms.limits import MAX_INLINE_DEPTH

_SIBLING = FUNCTION_LAYOUT.index["sibling"]


@dataclass(slots=True)
class FoundDies:
    """The DIEs a walk kept, in preorder, and every subprogram of the unit by offset."""

    offsets: list[int]  # .debug_info offset of each DIE
    tags: list[int]  # F.TAG_SUBPROGRAM, F.TAG_INLINED_SUBROUTINE or F.TAG_VARIABLE
    parents: list[int]  # index of the enclosing kept DIE (see the module note), -1 for none
    values: list[Values]  # laid out as FunctionValues; VariableValues for variables
    subprograms: dict[int, Values]  # unit walk: every subprogram, with code or not, by offset


def walk_dies(unit: Unit, data: bytes, abbrevs: CompiledAbbrevs) -> FoundDies:
    """The DIEs of ``unit`` that ``abbrevs`` (its table, compiled for one of the walks) keeps;
    ``data`` is the unit's bytes from its header on.

    Long on purpose: this is the inner loop over every DIE of the unit, with each abbreviation
    action handled inline (no call per DIE unless the abbreviation needs one), the most
    frequent first.
    """
    offsets: list[int] = []
    tags: list[int] = []
    parents: list[int] = []
    values: list[Values] = []
    subprograms: dict[int, Values] = {}
    found_dies = FoundDies(
        offsets=offsets, tags=tags, parents=parents, values=values, subprograms=subprograms
    )
    if not unit.top_has_children:
        return found_dies
    action = abbrevs.action
    fixed = abbrevs.fixed
    skip = abbrevs.skip
    sibling_at = abbrevs.sibling_at
    sibling_read = abbrevs.sibling_read
    extract = abbrevs.extract
    children = abbrevs.children
    inlined_tag, subprogram_tag, variable_tag = (
        F.TAG_INLINED_SUBROUTINE,
        F.TAG_SUBPROGRAM,
        F.TAG_VARIABLE,
    )
    unit_base = unit.base
    end = unit.header.end - unit_base
    position = unit.children_start - unit_base
    # One stack entry per open DIE with children: the index of the innermost enclosing kept
    # node (-1 outside any). An abbreviation code past the table's end raises IndexError
    # like truncated data does.
    stack = [-1]
    try:
        while position < end:
            start = position
            code = data[position]
            position += 1
            if code > 127:
                # Two-byte codes inline: clang LTO tables run to hundreds of abbreviations, and
                # a call per DIE cost a tenth of the walk.
                second = data[position]
                if second < 128:
                    code = (code & 0x7F) | (second << 7)
                    position += 1
                else:
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
                tags.append(inlined_tag)
                parents.append(stack[-1])
                values.append(found)
                if children[code]:
                    stack.append(len(values) - 1)
                    if len(stack) > MAX_INLINE_DEPTH:
                        raise DwarfError(
                            f"unit at {unit_base:#x}: DIEs nest more than {MAX_INLINE_DEPTH} "
                            f"deep at {unit_base + start:#x}"
                        )
            elif kind == ACT_JUMP_FIXED:
                position = sibling_read[code](data, position + sibling_at[code])[0]
                if position <= start:
                    raise DwarfError(f"DW_AT_sibling at {unit_base + start:#x} points back")
            elif kind == ACT_FUNCTION:
                position, found = extract[code](data, position, unit)  # type: ignore[misc]
                die_offset = unit_base + start
                subprograms[die_offset] = found
                offsets.append(die_offset)
                tags.append(subprogram_tag)
                parents.append(-1)  # its own root, even when nested: its code is its own
                values.append(found)
                if children[code]:
                    stack.append(len(values) - 1)
            elif kind == ACT_NAME:
                position, found = extract[code](data, position, unit)  # type: ignore[misc]
                subprograms[unit_base + start] = found
                if children[code]:
                    sibling = found[_SIBLING]
                    if sibling is not None and sibling > unit_base + start:
                        position = sibling - unit_base
                    else:
                        stack.append(stack[-1])
            elif kind == ACT_SUBPROGRAM:
                position, found = extract[code](data, position, unit)  # type: ignore[misc]
                offsets.append(unit_base + start)
                tags.append(subprogram_tag)
                parents.append(stack[-1])
                values.append(found)
                if children[code]:
                    stack.append(len(values) - 1)
            elif kind == ACT_ENTER:
                position = skip[code](data, position)  # type: ignore[misc]
                stack.append(stack[-1])
            elif kind == ACT_JUMP:
                position = sibling_read[code](data, position)
                if position <= start:
                    raise DwarfError(f"DW_AT_sibling at {unit_base + start:#x} points back")
            elif kind == ACT_VARIABLE:
                position, found = extract[code](data, position, unit)  # type: ignore[misc]
                offsets.append(unit_base + start)
                tags.append(variable_tag)
                parents.append(stack[-1])
                values.append(found)
                if children[code]:
                    stack.append(stack[-1])
            else:
                raise DwarfError(
                    f"unit at {unit_base:#x}: DIE at {unit_base + start:#x} uses unknown "
                    f"abbreviation {code}"
                )
    except (IndexError, ValueError, struct.error) as error:
        # A read past the unit's bytes: a byte (IndexError: also an abbreviation code past
        # the table), a NUL-terminated string (ValueError) or a fixed-size value (struct.error).
        raise DwarfError(f"unit at {unit_base:#x}: DIEs are truncated ({error})") from None
    return found_dies
