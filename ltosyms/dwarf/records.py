"""What a resolved frame carries of the DWARF layer's answers: source locations and the lines
a function spans.

Kept in a module of their own so that a decode served from the index (frames and chains
stored by address) loads these records without the resolver, the unit tables
(:mod:`ltosyms.dwarf.unit_tables`) or any parser; the records of a unit's own are in
:mod:`ltosyms.dwarf.unit_records`.
"""

from __future__ import annotations

from collections.abc import Sequence
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

    def fields(self) -> tuple[list[int | None], list[str | None]]:
        """The entry as plain numbers and strings: how the index keeps one, in a chain or
        inside a resolved frame; :meth:`from_fields` makes it again."""
        return (
            [self.line, self.column, int(self.inlined)],
            [self.function, self.file, self.full_path, self.dwarf_function],
        )

    @classmethod
    def from_fields(
        cls, numbers: Sequence[int | None], texts: Sequence[str | None]
    ) -> SourceLocation:
        """The entry :meth:`fields` gave ``numbers`` and ``texts`` of (ValueError when they
        are not three and four)."""
        line, column, inlined = numbers
        function, file, full_path, dwarf_function = texts
        return cls(
            function=function,
            file=file,
            full_path=full_path,
            line=line,
            column=column,
            inlined=bool(inlined),
            dwarf_function=dwarf_function,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionLines:
    """The source lines a function's code spans in the file that declares it: from its
    declaration line (or its first line there) to the last line its line-table rows reach
    there. Lines of inlined callees in other files do not count."""

    file: str | None  # source-relative, as SourceLocation.file
    first: int
    last: int
