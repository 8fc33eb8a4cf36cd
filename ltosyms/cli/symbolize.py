"""``ltosyms symbolize``: addresses or ``name+off/size`` to source lines, addr2line-like.

Queries are answered as they come: from stdin, each is resolved and written before the next
line is read, so a pipe of a million addresses starts printing at once, and no answer is
kept once written (the image's address table, written by ``ltosyms index``, keeps each lookup
free of unit loading and of stored chains; the ``--json`` document alone is kept whole until
the end; with ``-R``, the call-site finder keeps the instructions of each function it
disassembled). One query that
cannot be answered (unreadable, or its module missing) prints one error line and the others
go on; the exit status is then 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import TextIO

import click

from ltosyms.cli.cache import session_for
from ltosyms.cli.options import cache_options, json_option, modules_option
from ltosyms.context import ModuleSet
from ltosyms.decode.decode import Decoder
from ltosyms.decode.symbolize import Symbolized, parse_query, shown_query, symbolize_all
from ltosyms.errors import CacheError, LtosymsError, QueriesFailed
from ltosyms.oops.lines import iter_physical_blocks
from ltosyms.oops.records import FrameRole
from ltosyms.render.symbolize import (
    error_record,
    symbolized_json,
    symbolized_lines,
    symbolized_record,
)


def _queries(arguments: tuple[str, ...]) -> Iterator[str]:
    if arguments:
        yield from arguments
        return
    for lines in _stdin_blocks():
        for line in lines:
            if line.strip():
                yield line


def _stdin_blocks() -> Iterator[list[str]]:
    """stdin's lines as the log reader takes them (ltosyms.oops.lines): invalid UTF-8 as
    U+FFFD, where stdin's own text layer raises on it under a strict locale; a line kept to
    its first MAX_LINE_CHARS characters, so a stream without line ends (/dev/zero) runs in
    bounded memory. Read from the unbuffered stream, each read takes what the pipe holds: a
    program that writes one query and waits for its answer gets it."""
    if sys.stdin is None:  # no stdin at all (closed by the caller)
        return iter(())
    stream = sys.stdin.buffer
    return iter_physical_blocks(getattr(stream, "raw", stream))


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
    out = sys.stdout
    flush = line_buffered or as_jsonl or out.isatty()
    results: list[Symbolized] = []
    # Kept for the --json document only: an endless stream of bad queries must not grow.
    errors: list[tuple[str, str]] = []
    asked = failed = 0
    with session_for(cache_dir, no_cache) as session:
        context = session.open_vmlinux(vmlinux)
        decoder = Decoder(context, ModuleSet.from_paths(module_folders, session))
        role = FrameRole.RETURN_ADDRESS if return_address else FrameRole.EXACT_IP
        for text in _queries(queries):
            asked += 1
            try:
                answers = symbolize_all(decoder, parse_query(text, role, offset))
            except CacheError:
                raise  # the index, not the query: every query would fail alike
            except LtosymsError as error:
                failed += 1
                record = _failed(text.strip(), str(error), out if as_jsonl else None)
                if as_json:
                    errors.append(record)
                continue
            if as_json:
                results.extend(answers)
            else:
                _write(answers, out, as_jsonl)
            if flush:
                out.flush()
    if as_json:
        document = symbolized_json(results, context.name, context.build_id, errors)
        click.echo(json.dumps(document))
    if failed:
        raise QueriesFailed(f"{failed} of {asked} queries failed")


def _write(answers: list[Symbolized], out: TextIO, as_jsonl: bool) -> None:
    # One write per answer: echoing each line costs as much as the lookup behind it.
    if as_jsonl:
        text = "".join(json.dumps(symbolized_record(answer)) + "\n" for answer in answers)
    else:
        text = "".join(line + "\n" for answer in answers for line in symbolized_lines(answer))
    out.write(text)


def _failed(query: str, message: str, jsonl: TextIO | None) -> tuple[str, str]:
    """One line on stderr for the query (and one record in the --jsonl stream); the query
    and the first line of its error."""
    failure = (query, message.splitlines()[0] if message else message)
    if jsonl is not None:
        jsonl.write(json.dumps(error_record(*failure)) + "\n")
    sys.stdout.flush()  # the answers before it come first when both go to one terminal
    click.echo(f"ltosyms: error: {shown_query(query)}: {failure[1]}", err=True)
    return failure
