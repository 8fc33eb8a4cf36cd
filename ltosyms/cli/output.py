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


class _Keeper:
    """What :func:`keep_until_exit` keeps: nothing until :func:`keep_results` is called, which
    :func:`ltosyms.cli.main` does. A command run in a process that goes on (a test's
    CliRunner, a program calling ``cli``) keeps nothing."""

    def __init__(self) -> None:
        self.values: list[object] | None = None


_KEEPER = _Keeper()


def keep_results() -> None:
    """From now on, :func:`keep_until_exit` keeps what it is given: the process ends with
    ``os._exit`` (:func:`ltosyms.cli.main`)."""
    _KEEPER.values = []


def keep_until_exit(value: object) -> None:
    """Keep ``value`` alive until the process ends, when :func:`ltosyms.cli.main` runs it (it
    ends the process with ``os._exit``, after flushing): a result of many records is then
    never taken apart one record at a time, as it would be when the command returns (a diff's
    report and the groups its changes hold: 15-20 ms of an indexed diff)."""
    if _KEEPER.values is not None:
        _KEEPER.values.append(value)
