"""``ltosyms syms``: the symbol table with kallsyms sizes and parsed names."""

from __future__ import annotations

import json
import re

import click

from ltosyms.cli.options import json_option
from ltosyms.elf.kernel import load_any
from ltosyms.errors import UsageError
from ltosyms.render.syms import symbols_json, symbols_text


@click.command("syms")
@click.argument("image", type=str)
@click.option("--grep", "pattern", metavar="REGEX", help="Only symbols whose name matches.")
@json_option("ltosyms.syms/1")
def command(image: str, pattern: str | None, as_json: bool) -> None:
    """List the symbols of a vmlinux or module: link address, kallsyms size, ELF size, type,
    name, base name and suffix kinds."""
    try:
        regex = re.compile(pattern) if pattern else None
    except re.error as error:
        raise UsageError(f"--grep: invalid regular expression: {error}") from None
    loaded = load_any(image)
    selected = sorted(
        (s for s in loaded.symbols if regex is None or regex.search(s.name)),
        key=lambda s: (s.link_address, s.index),
    )
    if as_json:
        click.echo(json.dumps(symbols_json(loaded, selected), indent=1))
    else:
        for line in symbols_text(selected, loaded.image):
            click.echo(line)
