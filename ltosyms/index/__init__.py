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

__all__ = [
    "CacheLocation",
    "CuStore",
    "IndexStore",
    "cache_location",
    "default_cache_dir",
    "image_key",
    "open_store",
]
