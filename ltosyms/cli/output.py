"""How commands print many lines (a batch per echo, not one echo per line), and how they leave
what they made to the end of the process."""

from __future__ import annotations

from collections.abc import Iterable

import click


def echo_lines(lines: Iterable[str], batch: int = 1024, *, color: bool | None = None) -> None:
    """Print ``lines`` a batch at a time (one echo per line costs a long log ~10 ms, a
    bloat-o-meter table of 24,000 rows 60 ms). ``color=True`` keeps escapes as they are (a
    log's own); None strips them when stdout is no terminal, as click.echo does."""
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= batch:
            click.echo("\n".join(chunk), color=color)
            chunk = []
    if chunk:
        click.echo("\n".join(chunk), color=color)


# What commands hand to keep_until_exit(): referenced until the process ends.
_KEPT: list[object] = []


def keep_until_exit(value: object) -> None:
    """Keep ``value`` alive until the process ends, as :func:`ltosyms.cli.main` ends it (with
    ``os._exit``, after flushing): a result of many records is then never taken apart one
    record at a time, as it would be when the command returns (a diff's report and the groups
    its changes hold: 15-20 ms of an indexed diff)."""
    _KEPT.append(value)
