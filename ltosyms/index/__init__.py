"""The persistence layer: one index per image (a SQLite file and table files), every stored
kind declared once (:mod:`ltosyms.index.kinds`), and :class:`Answers`, the typed values of
one image's index that the rest of ltosyms reads and writes (bytes stay inside this
package)."""

from ltosyms.index.answers import Answers
from ltosyms.index.encoding import StoredValueError
from ltosyms.index.kinds import KINDS, Kind, Placement
from ltosyms.index.store import (
    CacheLocation,
    IndexStore,
    cache_location,
    default_cache_dir,
    image_key,
    open_store,
)

__all__ = [
    "KINDS",
    "Answers",
    "CacheLocation",
    "IndexStore",
    "Kind",
    "Placement",
    "StoredValueError",
    "cache_location",
    "default_cache_dir",
    "image_key",
    "open_store",
]
