"""What the DWARF layer answers with, apart from how it finds the answers.

Kept in a module of their own so that a decode served from the index (chains stored by
address) loads these records without the unit tables (:mod:`ltosyms.dwarf.unit_tables`) or
any parser.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceLocation:
    """One entry of an inline chain: a function and the source position inside it.

    ``function`` is the name tools print: the DWARF name, except for the outermost entry when
    the resolver has the symbol table, where it is the ELF symbol holding the address, as
    llvm-symbolizer prints it (``foo.cold``, ``foo.isra.0``, ``foo.llvm.123``, assembly
    functions without DWARF). ``dwarf_function`` is always the DWARF name: DW_AT_linkage_name,
    else DW_AT_name, through DW_AT_abstract_origin / DW_AT_specification (across units too)."""

    function: str | None
    file: str | None  # relative to the kernel source tree ("lib/dump_stack.c")
    full_path: str | None  # as DWARF has it, joined with its directory
    line: int | None  # None: no line information (never invented)
    column: int | None
    inlined: bool  # True for every entry except the outermost (the real function)
    dwarf_function: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionExtent:
    """The DWARF function (DW_TAG_subprogram with code) that holds an address."""

    name: str | None
    ranges: tuple[tuple[int, int], ...]  # [low, high) link addresses, entry range first
    entry_address: int  # DW_AT_low_pc, or the start of the first range
    decl_file: str | None  # source-relative
    decl_line: int | None
    cu_offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionLines:
    """The source lines a function's code spans in the file that declares it: from its
    declaration line (or its first line there) to the last line its line-table rows reach
    there. Lines of inlined callees in other files do not count."""

    file: str | None  # source-relative, as SourceLocation.file
    first: int
    last: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CompileUnit:
    """A compilation unit as its top DIE names it (DWARF 5 §3.1.1)."""

    offset: int  # .debug_info offset of the unit header: names the unit within one build
    name: str | None  # DW_AT_name: the primary source file, as the compiler was given it
    comp_dir: str | None  # DW_AT_comp_dir
