"""The persistent index: per-image SQLite files (and table files) holding parsed DWARF, the
symbol table and what decodes derived from the image."""

from ltosyms.index.store import (
    CacheLocation,
    IndexStore,
    cache_location,
    default_cache_dir,
    image_key,
    open_store,
)

__all__ = [
    "CacheLocation",
    "IndexStore",
    "cache_location",
    "default_cache_dir",
    "image_key",
    "open_store",
]
