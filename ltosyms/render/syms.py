"""Render symbol records as table rows or as the ``ltosyms.syms/1`` JSON document."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ltosyms.elf.kernel import LoadedImage
from ltosyms.elf.symtab import Symbol

SCHEMA = "ltosyms.syms/1"


def _suffix_kinds(symbol: Symbol) -> str:
    return ",".join(kind.value for kind in symbol.parsed.kinds) or "-"


def symbols_text(symbols: Iterable[Symbol]) -> Iterator[str]:
    yield f"{'address':<16} {'kallsyms':>8} {'elf':>8} {'T':1} {'name':<40} {'base':<30} suffixes"
    for symbol in symbols:
        kallsyms = "-" if symbol.kallsyms_size is None else f"{symbol.kallsyms_size:#x}"
        yield (
            f"{symbol.link_address:016x} {kallsyms:>8} {symbol.elf_size:>#8x} "
            f"{symbol.nm_type:1} {symbol.name:<40} {symbol.base_name:<30} {_suffix_kinds(symbol)}"
        )


def symbol_json(symbol: Symbol) -> dict[str, Any]:
    return {
        "name": symbol.name,
        "address": f"{symbol.link_address:#x}",
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
        "symbols": [symbol_json(s) for s in symbols],
    }
