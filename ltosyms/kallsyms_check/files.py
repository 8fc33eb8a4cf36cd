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

from ltosyms.dwarf import DwarfResolver
from ltosyms.elf.debug_sections import dwarf_resolver
from ltosyms.elf.image import KernelImage
from ltosyms.elf.symtab import Symbol
from ltosyms.errors import LtosymsError
from ltosyms.kallsyms_check.names import FilesOf

log = logging.getLogger(__name__)


def dwarf_files_of(image: KernelImage) -> FilesOf | None:
    """A :data:`FilesOf` over the image's DWARF, or None when it has none."""
    if not image.has_dwarf():
        return None
    resolver = dwarf_resolver(image)

    def files_of(symbols: Sequence[Symbol]) -> list[str | None]:
        try:
            return _unit_files(resolver, symbols)
        except LtosymsError as error:
            # Files only annotate the report; unreadable DWARF must not hide the rest of it.
            log.warning("%s: no source files for ambiguous names: %s", image.path, error)
            return [None] * len(symbols)

    return files_of


def _unit_files(resolver: DwarfResolver, symbols: Sequence[Symbol]) -> list[str | None]:
    return resolver.unit_files([symbol.link_address for symbol in symbols])
