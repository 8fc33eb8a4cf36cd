"""``ltosyms parse``: the reports and traces found in a console log, without any vmlinux."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import IO

import click

from ltosyms.cli.options import json_option
from ltosyms.errors import InputError
from ltosyms.oops import Report, iter_reports
from ltosyms.render.parse_json import parse_document_chunks
from ltosyms.render.parse_text import reports_text


@click.command("parse")
@click.argument("log", required=False, default="-", metavar="[LOG|-]")
@json_option("ltosyms.parse/1")
def command(log: str, as_json: bool) -> None:
    """Find the reports in a console log (oopses, BUGs, WARNINGs, KASAN/UBSAN, panics, hung
    tasks, RCU stalls, lockups, NMI backtraces, sysrq dumps) and list their traces and frames.

    LOG is a dmesg, serial console, journald or syslog capture; "-" or nothing reads stdin.
    """
    stream = _open(log)
    try:
        reports = _reading(iter_reports(stream), log)
        lines = parse_document_chunks(log, reports) if as_json else _with_newlines(reports)
        for chunk in lines:
            click.echo(chunk, nl=False)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _open(log: str) -> IO[bytes]:
    if log == "-":
        return sys.stdin.buffer
    try:
        return open(log, "rb")
    except OSError as error:
        raise InputError(f"cannot read {log}: {error.strerror or error}") from None


def _reading(reports: Iterator[Report], log: str) -> Iterator[Report]:
    # A read error in the middle of a log (a vanished file, an I/O error) is the user's input
    # problem, reported as one line.
    try:
        yield from reports
    except OSError as error:
        raise InputError(f"cannot read {log}: {error.strerror or error}") from None


def _with_newlines(reports: Iterator[Report]) -> Iterator[str]:
    # Up to 1,024 lines per echo (one echo per line costs a log of long traces a third of
    # its time), and whatever is pending at each report's end (the blank line between two):
    # a report still shows as soon as it is complete.
    batch: list[str] = []
    for line in reports_text(reports):
        batch.append(line)
        if not line or len(batch) >= 1024:
            yield "\n".join(batch) + "\n"
            batch.clear()
    if batch:
        yield "\n".join(batch) + "\n"
