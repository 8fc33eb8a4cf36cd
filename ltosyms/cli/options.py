"""The click options several commands share, each declared once.

Each function returns a decorator; a command's parameters keep the names given here
(``as_json``, ``output_format``, ``module_folders``, ``cache_dir``, ``no_cache``, ``limit``).
Only click is imported: ``ltosyms parse`` and ``ltosyms syms`` use these too, and must not pay
for the index or the DWARF reader.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

# What a --limit of 0 means in every command that has one.
SHOW_ALL = 0
DEFAULT_LIMIT = 20


def json_option(schema: str, output: str = "JSON output") -> Callable[[F], F]:
    """``--json``, passed as ``as_json``; the help names the document's schema."""
    return click.option("--json", "as_json", is_flag=True, help=f"{output} (schema {schema}).")


def format_option(choices: tuple[str, ...], help: str) -> Callable[[F], F]:
    """``--format``, passed as ``output_format``; the first choice is the default."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        help=help,
    )


def modules_option(purpose: str) -> Callable[[F], F]:
    """``--modules DIR`` (repeatable), passed as ``module_folders``; ``purpose`` opens the help."""
    return click.option(
        "--modules",
        "module_folders",
        multiple=True,
        type=str,
        metavar="DIR",
        help=f"{purpose} (searched recursively; repeatable; a .ko file works too).",
    )


def cache_dir_option(help_tail: str = "") -> Callable[[F], F]:
    """``--cache-dir DIR``, passed as ``cache_dir``."""
    return click.option(
        "--cache-dir",
        type=click.Path(),  # a file there is the cache's error (exit 4), not a usage error
        metavar="DIR",
        help="Where the index lives (default $LTOSYMS_CACHE_DIR, $XDG_CACHE_HOME/ltosyms or "
        "~/.cache/ltosyms)." + (f" {help_tail}" if help_tail else ""),
    )


def cache_options(function: F) -> F:
    """``--cache-dir DIR`` and ``--no-cache``, passed as ``cache_dir`` and ``no_cache``: the
    commands that read the index as they go (decode, symbolize)."""
    function = click.option(
        "--no-cache",
        is_flag=True,
        help="Neither read nor write the index (parse the DWARF every time).",
    )(function)
    return cache_dir_option(
        "An unusable DIR given here is an error; an unusable default only a warning."
    )(function)


def limit_option(what: str) -> Callable[[F], F]:
    """``--limit N`` (0: all), passed as ``limit``; ``what`` says what is counted."""
    return click.option(
        "--limit",
        type=click.IntRange(min=SHOW_ALL),
        default=DEFAULT_LIMIT,
        show_default=True,
        metavar="N",
        help=f"{what} (0: all).",
    )
