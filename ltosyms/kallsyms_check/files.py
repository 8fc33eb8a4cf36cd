"""Which source file each copy of an ambiguous function was compiled in, from DWARF.

Same-named statics differ by the compilation unit that holds them: 17 copies of ``jhash`` all
declare ``include/linux/jhash.h`` but live in ``kernel/bpf/hashtab.c``, ``lib/rhashtable.c``,
and so on. So the file shown is the unit's ``DW_AT_name`` (DWARF 5 §3.1.1), found through the
resolver's address -> unit map; only the unit's top DIE is read, never its line program or DIE
tree, which keeps this to about a second on a distribution vmlinux. Units named
``<artificial>`` (gcc LTO partitions) fall back to the function's ``DW_AT_decl_file``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ltosyms.dwarf import forms as dwarf_forms
from ltosyms.dwarf.paths import relative_path, source_roots
from ltosyms.dwarf.resolver import DwarfResolver
from ltosyms.elf.image import KernelImage
from ltosyms.elf.symtab import Symbol
from ltosyms.errors import LtosymsError
from ltosyms.kallsyms_check.names import FilesOf

log = logging.getLogger(__name__)


def dwarf_files_of(image: KernelImage) -> FilesOf | None:
    """A :data:`FilesOf` over the image's DWARF, or None when it has none."""
    if not image.has_dwarf():
        return None
    resolver = DwarfResolver(image)

    def files_of(symbols: Sequence[Symbol]) -> list[str | None]:
        try:
            return _unit_files(resolver, symbols)
        except LtosymsError as error:
            # Files only annotate the report; unreadable DWARF must not hide the rest of it.
            log.warning("%s: no source files for ambiguous names: %s", image.path, error)
            return [None] * len(symbols)

    return files_of


def _unit_files(resolver: DwarfResolver, symbols: Sequence[Symbol]) -> list[str | None]:
    units: dict[int, tuple[str | None, str | None]] = {}
    found: list[tuple[str | None, str | None] | None] = []
    for symbol in symbols:
        cu_offset = resolver.cu_for(symbol.link_address)
        if cu_offset is None:  # assembly without DWARF
            found.append(None)
            continue
        if cu_offset not in units:
            unit = resolver.reader.unit(cu_offset)
            units[cu_offset] = (
                unit.top_string(dwarf_forms.AT_NAME),
                unit.top_string(dwarf_forms.AT_COMP_DIR),
            )
        found.append(units[cu_offset])
    # One source root for the whole build (dwarf_paths: the prefix before /arch/ or
    # /include/linux/), recognized from all unit names together, plus each compilation dir.
    names = [name for name, _ in units.values()]
    roots: set[str] = set()
    for comp_dir in {comp_dir for _, comp_dir in units.values()}:
        roots.update(source_roots(comp_dir, names))
    ordered = tuple(sorted(roots, key=len, reverse=True))
    files: list[str | None] = []
    for symbol, unit_names in zip(symbols, found, strict=True):
        name = unit_names[0] if unit_names else None
        if name is not None and name.startswith("<artificial>"):
            extent = resolver.function_at(symbol.link_address)
            name = extent.decl_file if extent is not None else None
        files.append(relative_path(name, ordered))
    return files
