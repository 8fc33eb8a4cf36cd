"""``ltosyms symbolize``: addresses or ``name+off/size`` to source lines, addr2line-like.

Queries are answered as they come: from stdin, each is resolved and written before the next
line is read, so a pipe of a million addresses starts printing at once, and no answer is
kept once written (the image's address table, written by ``ltosyms index``, keeps each lookup
free of unit loading and of stored chains; the ``--json`` document alone is kept whole until
the end; with ``-R``, the call-site finder keeps the instructions of each function it
disassembled). One query that
cannot be answered (unreadable, or its module missing) prints one error line and the others
go on; the exit status is then 1. With ``--jobs N``, N worker processes answer the queries
of stdin (ltosyms.decode.workers), the answers written in the order asked.
"""

from __future__ import annotations

import io
import json
import select
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

import click

from ltosyms.cli.cache import session_for
from ltosyms.cli.options import cache_options, json_option, modules_option
from ltosyms.context import ModuleSet
from ltosyms.decode.decode import Decoder
from ltosyms.decode.symbolize import parse_query, shown_query, symbolize_all
from ltosyms.decode.workers import MAX_JOBS, WorkerAnswers
from ltosyms.errors import CacheError, LtosymsError, QueriesFailed
from ltosyms.oops.lines import iter_physical_blocks
from ltosyms.oops.records import FrameRole
from ltosyms.render.symbolize import (
    error_record,
    symbolized_document,
    symbolized_lines,
    symbolized_record,
)


def _queries(arguments: tuple[str, ...]) -> Iterator[list[str]]:
    """The queries, a block at a time: the arguments, or the lines of stdin as they come
    (blank ones left out)."""
    if arguments:
        yield list(arguments)
        return
    for lines in _stdin_blocks():
        yield [line for line in lines if line.strip()]


def _stdin_blocks() -> Iterator[list[str]]:
    """stdin's lines as the log reader takes them (ltosyms.oops.lines): invalid UTF-8 as
    U+FFFD, where stdin's own text layer raises on it under a strict locale; a line kept to
    its first MAX_LINE_CHARS characters, so a stream without line ends (/dev/zero) runs in
    bounded memory. Read from the unbuffered stream, each read takes what the pipe holds: a
    program that writes one query and waits for its answer gets it."""
    if sys.stdin is None:  # no stdin at all (closed by the caller)
        return iter(())
    stream = sys.stdin.buffer
    # A test harness's stdin is bytes in memory, with no unbuffered stream under it.
    return iter_physical_blocks(stream.raw if isinstance(stream, io.BufferedReader) else stream)


@click.command("symbolize")
@click.argument("vmlinux", type=str)
@click.argument("queries", nargs=-1)
@modules_option("Where module files are, for `name+off [module]` queries")
@click.option(
    "-R",
    "--return-address",
    is_flag=True,
    help="The addresses are return addresses (map the call before them), not exact IPs.",
)
@click.option(
    "--kaslr-offset",
    type=str,
    default="0",
    help="Subtract this from raw addresses (runtime -> link-time), e.g. 0x24200000.",
)
@json_option("ltosyms.symbolize/1")
@click.option(
    "--jsonl",
    "as_jsonl",
    is_flag=True,
    help="One JSON object per answer, written as it is found (the entries of --json's results).",
)
@click.option(
    "--line-buffered",
    is_flag=True,
    help="Flush the output after every answer (always so on a terminal and with --jsonl).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1, max=MAX_JOBS),
    default=1,
    show_default=True,
    help="Worker processes answering the queries of stdin, for long streams (each opens the "
    "image and its index on its own; the answers keep the order asked).",
)
@cache_options
def command(
    vmlinux: str,
    queries: tuple[str, ...],
    module_folders: tuple[str, ...],
    return_address: bool,
    kaslr_offset: str,
    as_json: bool,
    as_jsonl: bool,
    line_buffered: bool,
    jobs: int,
    cache_dir: str | None,
    no_cache: bool,
) -> None:
    """Map each ADDR, NAME+OFF[/SIZE] [MODULE], pasted trace line or bare function NAME (from
    stdin when none is given) to its symbol, call site and source lines, inlined frames
    expanded. A bare NAME gives every copy of the function, each at its start."""
    try:
        offset = int(kaslr_offset, 0)
    except ValueError:
        raise click.BadParameter(
            f"not a number: {kaslr_offset}", param_hint="--kaslr-offset"
        ) from None
    if as_json and as_jsonl:
        raise click.UsageError("--json and --jsonl: give one of them")
    role = FrameRole.RETURN_ADDRESS if return_address else FrameRole.EXACT_IP
    writer = _Writer(
        out=sys.stdout,
        flush=line_buffered or as_jsonl or sys.stdout.isatty(),
        keep_for_document=as_json,
    )
    form = "json" if as_json else "jsonl" if as_jsonl else "text"

    @contextmanager
    def opened() -> Iterator[tuple[Callable[[str], _Answer], tuple[str, str | None]]]:
        with session_for(cache_dir, no_cache) as session:
            context = session.open_vmlinux(vmlinux)
            decoder = Decoder(context, ModuleSet.from_paths(module_folders, session))
            yield (
                lambda text: _answer(decoder, text, role, offset, form),
                (context.name, context.build_id),
            )

    if jobs > 1 and not queries:
        with WorkerAnswers(opened, jobs) as workers:
            for answer in workers.answers(_queries(queries), _stdin_waiting()):
                writer.write(answer)
            about = workers.about
        assert about is not None  # a worker opened the image, or raised
    else:
        with opened() as (answer_one, about):
            for block in _queries(queries):
                for text in block:
                    writer.write(answer_one(text))
    if as_json:
        path, build_id = about
        document = symbolized_document(writer.records, path, build_id, writer.errors)
        click.echo(json.dumps(document))
    if writer.failed:
        raise QueriesFailed(f"{writer.failed} of {writer.asked} queries failed")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Answer:
    """One query's outcome, as written: made where it is answered (a worker process or
    this one) and written here, in the order asked."""

    query: str  # as given, without its line end
    text: str  # what goes to stdout: the answer's lines or --jsonl objects ("" with --json)
    records: tuple[dict[str, Any], ...]  # the --json document's entries for it
    error: str | None = None  # why it could not be answered: the first line of the error


def _answer(decoder: Decoder, text: str, role: FrameRole, offset: int, form: str) -> _Answer:
    query = text.strip()
    try:
        answers = symbolize_all(decoder, parse_query(text, role, offset))
    except CacheError:
        raise  # the index, not the query: every query would fail alike
    except LtosymsError as error:
        message = str(error)
        why = message.splitlines()[0] if message else message
        jsonl = json.dumps(error_record(query, why)) + "\n" if form == "jsonl" else ""
        return _Answer(query=query, text=jsonl, records=(), error=why)
    if form == "json":
        return _Answer(query=query, text="", records=tuple(map(symbolized_record, answers)))
    # One string per answer: echoing each line costs as much as the lookup behind it.
    if form == "jsonl":
        written = "".join(json.dumps(symbolized_record(answer)) + "\n" for answer in answers)
    else:
        written = "".join(line + "\n" for answer in answers for line in symbolized_lines(answer))
    return _Answer(query=query, text=written, records=())


class _Writer:
    """Writes the answers in the order given and counts them; keeps what the --json
    document needs (only then: an endless stream of bad queries must not grow memory)."""

    def __init__(self, *, out: TextIO, flush: bool, keep_for_document: bool) -> None:
        self.out = out
        self.flush = flush
        self.keep_for_document = keep_for_document
        self.records: list[dict[str, Any]] = []
        self.errors: list[tuple[str, str]] = []
        self.asked = 0
        self.failed = 0

    def write(self, answer: _Answer) -> None:
        self.asked += 1
        if answer.text:
            self.out.write(answer.text)
        if answer.error is None:
            if self.keep_for_document:
                self.records.extend(answer.records)
            if self.flush:
                self.out.flush()
            return
        self.failed += 1
        if self.keep_for_document:
            self.errors.append((answer.query, answer.error))
        self.out.flush()  # the answers before it come first when both go to one terminal
        click.echo(f"ltosyms: error: {shown_query(answer.query)}: {answer.error}", err=True)


def _stdin_waiting() -> Callable[[], bool]:
    """Whether stdin has more to read without waiting (always so for a stream in memory)."""
    try:
        descriptor = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return lambda: True
    return lambda: bool(select.select([descriptor], [], [], 0)[0])
