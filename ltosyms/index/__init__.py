"""The persistent index: per-image SQLite files holding the symbol table and parsed DWARF."""

from ltosyms.index.store import (
    CacheLocation,
    CuStore,
    IndexStore,
    cache_location,
    default_cache_dir,
    image_key,
    open_store,
)
from ltosyms.index.symbols import StoredSymbolTable, SymbolLookup, load_symbols, store_symbols

__all__ = [
    "CacheLocation",
    "CuStore",
    "IndexStore",
    "StoredSymbolTable",
    "SymbolLookup",
    "cache_location",
    "default_cache_dir",
    "image_key",
    "load_symbols",
    "open_store",
    "store_symbols",
]
