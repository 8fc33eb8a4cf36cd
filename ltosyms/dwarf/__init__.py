"""The DWARF layer: debug sections in, source locations and function extents out.

It reads the sections it is handed (:class:`DwarfSections`: byte buffers and a
:class:`DwarfConfig`, as pyelftools' ``DWARFInfo`` takes a ``DwarfConfig`` and section streams)
and knows nothing of the ELF file they come from: :mod:`ltosyms.elf.debug_sections` makes them
from a kernel image.

- :class:`DwarfResolver`: link address -> inline chain (:class:`SourceLocation`), function
  extent, compilation unit; lazy per unit, units kept in a :class:`~ltosyms.stores.Memo`,
  or all answered from the image's :class:`AddressTable` (one flat buffer read in place, made
  by an :class:`AddressTableBuilder` from every unit).
- :func:`take_census`: one walk over all of ``.debug_info`` (what ``diff`` reads).
- :class:`UnitParser`: the parsers behind both, for the index builder's worker processes.

The resolver, the section types, the parsers, the unit tables and the census load on first use
(PEP 562 ``__getattr__``), not with this package: a decode answered from stored frames
imports the records only.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ltosyms.dwarf.records import FunctionLines, SourceLocation
from ltosyms.errors import DwarfError

if TYPE_CHECKING:
    from ltosyms.dwarf.address_table import (
        ADDRESS_TABLE_KIND,
        AddressTable,
        AddressTableBuilder,
        ChainMap,
        chain_map,
    )
    from ltosyms.dwarf.census import (
        DwarfCensus,
        DwarfFunction,
        DwarfVariable,
        InlinedFunction,
        take_census,
    )
    from ltosyms.dwarf.parser import UnitParser
    from ltosyms.dwarf.paths import relative_path, source_roots
    from ltosyms.dwarf.resolver import CuKey, DwarfResolver, OuterName
    from ltosyms.dwarf.sections import (
        DEBUG_SECTIONS,
        DwarfConfig,
        DwarfSections,
        SectionBuffer,
        SectionSource,
    )
    from ltosyms.dwarf.unit_map import CuMap
    from ltosyms.dwarf.unit_records import CompileUnit, FunctionExtent
    from ltosyms.dwarf.unit_tables import CuData

__all__ = [
    "ADDRESS_TABLE_KIND",
    "DEBUG_SECTIONS",
    "AddressTable",
    "AddressTableBuilder",
    "ChainMap",
    "CompileUnit",
    "CuData",
    "CuKey",
    "CuMap",
    "DwarfCensus",
    "DwarfConfig",
    "DwarfError",
    "DwarfFunction",
    "DwarfResolver",
    "DwarfSections",
    "DwarfVariable",
    "FunctionExtent",
    "FunctionLines",
    "InlinedFunction",
    "OuterName",
    "SectionBuffer",
    "SectionSource",
    "SourceLocation",
    "UnitParser",
    "chain_map",
    "relative_path",
    "source_roots",
    "take_census",
]

# Names loaded on first use, and the module that defines each.
_LAZY = {
    "CompileUnit": "ltosyms.dwarf.unit_records",
    "FunctionExtent": "ltosyms.dwarf.unit_records",
    "relative_path": "ltosyms.dwarf.paths",
    "source_roots": "ltosyms.dwarf.paths",
    "CuKey": "ltosyms.dwarf.resolver",
    "DwarfResolver": "ltosyms.dwarf.resolver",
    "OuterName": "ltosyms.dwarf.resolver",
    "DEBUG_SECTIONS": "ltosyms.dwarf.sections",
    "DwarfConfig": "ltosyms.dwarf.sections",
    "DwarfSections": "ltosyms.dwarf.sections",
    "SectionBuffer": "ltosyms.dwarf.sections",
    "SectionSource": "ltosyms.dwarf.sections",
    "ADDRESS_TABLE_KIND": "ltosyms.dwarf.address_table",
    "AddressTable": "ltosyms.dwarf.address_table",
    "AddressTableBuilder": "ltosyms.dwarf.address_table",
    "ChainMap": "ltosyms.dwarf.address_table",
    "chain_map": "ltosyms.dwarf.address_table",
    "CuData": "ltosyms.dwarf.unit_tables",
    "CuMap": "ltosyms.dwarf.unit_map",
    "DwarfCensus": "ltosyms.dwarf.census",
    "DwarfFunction": "ltosyms.dwarf.census",
    "DwarfVariable": "ltosyms.dwarf.census",
    "InlinedFunction": "ltosyms.dwarf.census",
    "UnitParser": "ltosyms.dwarf.parser",
    "take_census": "ltosyms.dwarf.census",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
