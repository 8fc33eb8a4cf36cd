"""The cache options every command that reads the index shares.

Kept apart from ``ltosyms index`` so that a decode does not import the index builder (its
process pool and the DWARF parser it drives).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ltosyms.context import Session
from ltosyms.errors import UsageError
from ltosyms.index.store import cache_location

F = TypeVar("F", bound=Callable[..., Any])


def cache_options(function: F) -> F:
    """``--cache-dir DIR`` and ``--no-cache``, passed as ``cache_dir`` and ``no_cache``."""
    function = click.option(
        "--no-cache",
        is_flag=True,
        help="Neither read nor write the index (parse the DWARF every time).",
    )(function)
    return click.option(
        "--cache-dir",
        type=click.Path(),  # a file there is the cache's error (exit 4), not a usage error
        metavar="DIR",
        help="Where the index lives (default $LTOSYMS_CACHE_DIR, $XDG_CACHE_HOME/ltosyms or "
        "~/.cache/ltosyms). An unusable DIR given here is an error; an unusable default only "
        "a warning.",
    )(function)


def session_for(cache_dir: str | None, no_cache: bool) -> Session:
    """A session whose images keep their index as the cache options ask (none with
    ``--no-cache``)."""
    if no_cache:
        if cache_dir is not None:
            raise UsageError("--cache-dir and --no-cache contradict each other")
        return Session(None)
    return Session(cache_location(cache_dir))
