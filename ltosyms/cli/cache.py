"""The session the cache options (:func:`ltosyms.cli.options.cache_options`) ask for.

Kept apart from ``ltosyms index`` so that a decode does not import the index builder (its
process pool and the DWARF parser it drives).
"""

from __future__ import annotations

from ltosyms.context import Session
from ltosyms.errors import UsageError
from ltosyms.index.store import cache_location


def session_for(cache_dir: str | None, no_cache: bool) -> Session:
    """A session whose images keep their index as the cache options ask (none with
    ``--no-cache``)."""
    if no_cache:
        if cache_dir is not None:
            raise UsageError("--cache-dir and --no-cache contradict each other")
        return Session(None)
    return Session(cache_location(cache_dir))
