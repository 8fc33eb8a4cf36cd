"""The ``ltosyms`` command line: click commands over the library, nothing more.

Each subcommand lives in its own module under :mod:`ltosyms.cli` and is registered here.
Errors from the library (:class:`ltosyms.errors.LtosymsError`) become one line on stderr and
the error's exit code; any other exception is a bug and is shown as one line too, with the
traceback only under ``-v``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from ltosyms import __version__
from ltosyms.errors import LtosymsError

log = logging.getLogger("ltosyms")

# Exit codes, documented in the README: 0 ok, 1 a --fail-on condition holds, 2 bad input or
# usage, 3 the vmlinux does not match the log/dump, 4 the cache cannot be used, 70 internal bug.
EXIT_INTERNAL = 70


class LtosymsGroup(click.Group):
    """Maps library errors to one-line messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LtosymsError as error:
            _die(ctx, f"ltosyms: error: {error}", error.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            # `ltosyms decode ... | head`: the reader went away; that is not an error.
            sys.stderr.close()
            ctx.exit(0)
        except KeyboardInterrupt:
            _die(ctx, "ltosyms: interrupted", 130)
        except Exception as error:
            _die(ctx, f"ltosyms: internal error: {type(error).__name__}: {error}", EXIT_INTERNAL)
        return None


def _die(ctx: click.Context, message: str, exit_code: int) -> None:
    if log.isEnabledFor(logging.DEBUG):
        log.exception("details")
    click.echo(message.splitlines()[0] if message else message, err=True)
    ctx.exit(exit_code)


@click.group(cls=LtosymsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ltosyms")
@click.option("-v", "--verbose", count=True, help="Diagnostics on stderr (-vv for more).")
def cli(verbose: int) -> None:
    """Readable kernel crashes, symbol diffs and kallsyms checks for LTO kernels."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="ltosyms: %(levelname)s: %(message)s")


def _register() -> None:
    # Imported here so that `ltosyms --help` stays cheap and each command module stays separate.
    from ltosyms.cli import decode, diff, index, kallsyms_check, parse, symbolize, syms

    for module in (syms, parse, decode, symbolize, kallsyms_check, diff, index):
        cli.add_command(module.command)


_register()


def main() -> None:
    cli(prog_name="ltosyms")
