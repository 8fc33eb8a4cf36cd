"""The ``ltosyms`` command line: click commands over the library, nothing more.

Each subcommand lives in its own module under :mod:`ltosyms.cli` and is registered here.
Errors from the library (:class:`ltosyms.errors.LtosymsError`) become one line on stderr and
the error's exit code; any other exception is a bug and is shown as one line too, with the
traceback only under ``-v``.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import os
import sys
from typing import Any

import click

from ltosyms import __version__
from ltosyms.errors import LtosymsError

log = logging.getLogger("ltosyms")

# Exit codes, documented in the README: 0 ok, 1 a --fail-on condition holds, 2 bad input or
# usage, 3 the vmlinux does not match the log/dump, 4 the cache cannot be used, 70 internal bug.
EXIT_INTERNAL = 70


# Command name -> module under ltosyms.cli exposing `command`. Modules are imported only when
# their command runs (or help lists it): `ltosyms decode` does not pay for diff's imports.
COMMANDS = {
    "syms": "syms",
    "parse": "parse",
    "decode": "decode",
    "symbolize": "symbolize",
    "kallsyms-check": "kallsyms_check",
    "diff": "diff",
    "index": "index",
}


class LtosymsGroup(click.Group):
    """Loads commands lazily; maps library errors to one-line messages and exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMANDS.get(cmd_name)
        if module_name is None:
            return None
        module = importlib.import_module(f"ltosyms.cli.{module_name}")
        # Modules, classes and functions live as long as the process: moved out of the
        # collector's sight, they are not traversed again by every collection a command's
        # allocations trigger (a tenth of a short decode's time otherwise).
        gc.freeze()
        # A command makes records by the million (a decode of a 200 MB log), nearly all freed
        # by their reference counts: the youngest generation is collected every 100,000
        # allocations rather than 700, which saves 3-4% of such a run and holds back at most
        # that many objects of a reference cycle.
        gc.set_threshold(100_000, 10, 10)
        command: click.Command = module.command
        return command

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


def main() -> None:
    from ltosyms.cli.output import keep_results

    keep_results()  # the process ends below, with os._exit
    try:
        cli(prog_name="ltosyms")
    except SystemExit as done:
        status = done.code
    else:
        status = 0
    # The command has finished and closed what it opened (every file and index is closed by
    # the with-blocks it ran in): the process ends here, without the interpreter taking apart
    # the records it made one by one (12 ms of an indexed diff). Only what is written must be
    # flushed first.
    for stream in (sys.stdout, sys.stderr):
        # A reader that went away, or a stream the command closed: nothing more to say to it.
        with contextlib.suppress(BrokenPipeError, ValueError):
            stream.flush()
    if status is None:
        status = 0
    elif not isinstance(status, int):
        print(status, file=sys.stderr, flush=True)
        status = 1
    os._exit(status)
