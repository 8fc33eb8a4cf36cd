"""``ltosyms decode``: an oops, WARNING or stack dump decoded against its vmlinux."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import click

from ltosyms.cli.index import cache_options, open_cache
from ltosyms.decode.decode import DecodedReport, Decoder
from ltosyms.decode.modules import ModuleSet
from ltosyms.elf.kernel import LoadedImage, load_vmlinux
from ltosyms.errors import InputError, MismatchError
from ltosyms.index.store import IndexStore
from ltosyms.oops.lines import iter_physical_lines
from ltosyms.oops.parse import iter_reports
from ltosyms.render.decode_json import decode_document
from ltosyms.render.decode_text import (
    decode_stacktrace_annotations,
    render_log,
    render_log_decode_stacktrace,
    report_annotations,
)


@contextmanager
def seekable_log(log: str) -> Iterator[IO[bytes]]:
    """The log as a binary file that can be read twice (stdin is spooled to a temp file):
    once to find and decode reports, once to print it with the decoding interleaved."""
    if log == "-":
        with tempfile.TemporaryFile() as spool:
            shutil.copyfileobj(sys.stdin.buffer, spool)
            spool.seek(0)
            yield spool
        return
    path = Path(log)
    try:
        file = path.open("rb")
    except IsADirectoryError:
        raise InputError(f"{log}: is a directory, not a log") from None
    except OSError as error:
        raise InputError(f"{log}: {error.strerror or error}") from None
    with file:
        yield file


def log_lines(file: IO[bytes]) -> Iterator[str]:
    """Physical lines exactly as the parser numbers them (universal newlines)."""
    file.seek(0)
    return iter_physical_lines(file)


def make_decoder(
    loaded: LoadedImage, module_folders: tuple[str, ...], cache_dir: str | None, no_cache: bool
) -> Decoder:
    modules = ModuleSet()
    for folder in module_folders:
        path = Path(folder)
        if not path.exists():
            raise InputError(f"{folder}: no such file or directory (--modules)")
        if path.is_file():
            modules.add_file(path)
        else:
            modules.add_folder(path)
    stores: list[IndexStore] = []

    def store_for(image: LoadedImage) -> IndexStore | None:
        store = open_cache(image.image, cache_dir, no_cache)
        if store is not None:
            stores.append(store)
        return store

    return Decoder(loaded, modules, store_for)


@click.command("decode")
@click.argument("vmlinux", type=str)
@click.argument("log", default="-", type=click.Path(allow_dash=True))
@click.option(
    "--modules",
    "module_folders",
    multiple=True,
    type=str,
    metavar="DIR",
    help="Where module files are (searched recursively; repeatable; a .ko file works too).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON output (schema ltosyms.decode/1).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["annotated", "decode-stacktrace"]),
    default="annotated",
    show_default=True,
    help="Text layout: the log annotated, or scripts/decode_stacktrace.sh's line format.",
)
@cache_options
def command(
    vmlinux: str,
    log: str,
    module_folders: tuple[str, ...],
    as_json: bool,
    output_format: str,
    cache_dir: str | None,
    no_cache: bool,
) -> None:
    """Decode the oopses and stack traces in LOG (default stdin) against VMLINUX."""
    loaded = load_vmlinux(vmlinux)
    decoder = make_decoder(loaded, module_folders, cache_dir, no_cache)
    for warning in decoder.warnings:
        click.echo(f"ltosyms: warning: {warning}", err=True)
    with seekable_log(log) as file:
        decoded = list(decoder.decode_all(iter_reports(file)))
        if as_json:
            click.echo(json.dumps(decode_document(loaded, decoded), indent=1))
        elif output_format == "decode-stacktrace":
            annotations = {}
            for report in decoded:
                annotations.update(decode_stacktrace_annotations(report))
            for line in render_log_decode_stacktrace(log_lines(file), annotations):
                click.echo(line, color=True)  # the log's own escapes stay as they were
        else:
            notes: dict[int, list[str]] = {}
            for report in decoded:
                for number, lines in report_annotations(report).items():
                    notes.setdefault(number, []).extend(lines)
            for line in render_log(log_lines(file), notes):
                click.echo(line, color=True)  # the log's own escapes stay as they were
    _finish(decoded)


def _finish(decoded: list[DecodedReport]) -> None:
    for report in decoded:
        for warning in report.warnings:
            click.echo(f"ltosyms: warning: line {report.report.first_line}: {warning}", err=True)
    if any(report.mismatch for report in decoded):
        raise MismatchError("the vmlinux does not match the log (see the warnings above)")
