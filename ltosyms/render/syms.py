"""Render symbol records as table rows or as the ``ltosyms.syms/1`` JSON document."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ltosyms.elf.image import KernelImage
from ltosyms.elf.kernel import LoadedImage
from ltosyms.elf.symtab import Symbol

SCHEMA = "ltosyms.syms/1"


def _suffix_kinds(symbol: Symbol) -> str:
    return ",".join(kind.value for kind in symbol.parsed.kinds) or "-"


def section_offset(image: KernelImage, symbol: Symbol) -> int | None:
    """Where a module's symbol is in its section (its ``st_value``, as objdump and nm print
    it): a module has no link address a user can look up (ltosyms lays its sections out
    privately, :mod:`ltosyms.elf.image`)."""
    section = image.get_section(symbol.section) if symbol.section else None
    return None if section is None else symbol.link_address - section.link_address


def symbols_text(symbols: Iterable[Symbol], image: KernelImage) -> Iterator[str]:
    """One row per symbol; a module's symbols by ``section+offset`` instead of an address."""
    width = 16
    if image.is_module:
        symbols = list(symbols)
        width = max((len(_place(image, s)) for s in symbols), default=16)
    yield (
        f"{'address':<{width}} {'kallsyms':>8} {'elf':>8} {'T':1} {'name':<40} {'base':<30} "
        "suffixes"
    )
    for symbol in symbols:
        kallsyms = "-" if symbol.kallsyms_size is None else f"{symbol.kallsyms_size:#x}"
        where = _place(image, symbol) if image.is_module else f"{symbol.link_address:016x}"
        yield (
            f"{where:<{width}} {kallsyms:>8} {symbol.elf_size:>#8x} "
            f"{symbol.nm_type:1} {symbol.name:<40} {symbol.base_name:<30} {_suffix_kinds(symbol)}"
        )


def _place(image: KernelImage, symbol: Symbol) -> str:
    offset = section_offset(image, symbol)
    return "-" if offset is None else f"{symbol.section}+{offset:#x}"


def symbol_json(symbol: Symbol, image: KernelImage) -> dict[str, Any]:
    """``address`` is the link address, null in a module (``section_offset`` instead)."""
    offset = section_offset(image, symbol) if image.is_module else None
    return {
        "name": symbol.name,
        "address": None if image.is_module else f"{symbol.link_address:#x}",
        "section_offset": offset,
        "elf_size": symbol.elf_size,
        "kallsyms_size": symbol.kallsyms_size,
        "type": symbol.type,
        "bind": symbol.bind,
        "nm_type": symbol.nm_type,
        "section": symbol.section,
        "base": symbol.base_name,
        "suffixes": [{"kind": p.kind.value, "text": p.text} for p in symbol.parsed.suffixes],
    }


def symbols_json(loaded: LoadedImage, symbols: Sequence[Symbol]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "path": str(loaded.image.path),
        "build_id": loaded.build_id,
        "kind": loaded.image.kind.value,
        "machine": loaded.image.machine,
        "symbols": [symbol_json(s, loaded.image) for s in symbols],
    }
