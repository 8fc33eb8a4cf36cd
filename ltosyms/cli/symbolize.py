"""``ltosyms symbolize``: addresses or ``name+off/size`` to source lines, addr2line-like."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import click

from ltosyms.cli.cache import cache_options, session_for
from ltosyms.context import ModuleSet
from ltosyms.decode.decode import Decoder
from ltosyms.decode.symbolize import Symbolized, parse_query, symbolize
from ltosyms.oops.records import FrameRole
from ltosyms.render.symbolize import symbolized_json, symbolized_lines


def _queries(arguments: tuple[str, ...]) -> Iterator[str]:
    if arguments:
        yield from arguments
        return
    for line in sys.stdin:
        if line.strip():
            yield line


@click.command("symbolize")
@click.argument("vmlinux", type=str)
@click.argument("queries", nargs=-1)
@click.option(
    "--modules",
    "module_folders",
    multiple=True,
    type=str,
    metavar="DIR",
    help="Where module files are, for `name+off [module]` queries (repeatable).",
)
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
@click.option("--json", "as_json", is_flag=True, help="JSON output (schema ltosyms.symbolize/1).")
@cache_options
def command(
    vmlinux: str,
    queries: tuple[str, ...],
    module_folders: tuple[str, ...],
    return_address: bool,
    kaslr_offset: str,
    as_json: bool,
    cache_dir: str | None,
    no_cache: bool,
) -> None:
    """Map each ADDR or NAME+OFF[/SIZE] [MODULE] (from stdin when none is given) to its
    symbol, call site and source lines, inlined frames expanded."""
    try:
        offset = int(kaslr_offset, 0)
    except ValueError:
        raise click.BadParameter(
            f"not a number: {kaslr_offset}", param_hint="--kaslr-offset"
        ) from None
    with session_for(cache_dir, no_cache) as session:
        context = session.open_vmlinux(vmlinux)
        decoder = Decoder(context, ModuleSet.from_paths(module_folders, session))
        role = FrameRole.RETURN_ADDRESS if return_address else FrameRole.EXACT_IP
        results: list[Symbolized] = []
        for text in _queries(queries):
            result = symbolize(decoder, parse_query(text, role, offset))
            if as_json:
                results.append(result)
            else:
                for line in symbolized_lines(result):
                    click.echo(line)
    if as_json:
        click.echo(json.dumps(symbolized_json(results, context.name, context.build_id)))
