"""The ``ltosyms`` command's entry point: sets up the process, then hands over to the CLI."""

from __future__ import annotations

import gc


def main() -> None:
    # Start-up creates tens of thousands of objects that live as long as the process
    # (modules, classes, functions, the records' generated methods): with the default
    # threshold the collector runs ~100 times while they are made and walks them again and
    # again, a sixth of a warm decode's import time. A command's own records are nearly all
    # freed by their reference counts (see ltosyms.cli.LtosymsGroup.get_command), so the
    # youngest generation is collected every 100,000 allocations from the first one on.
    gc.set_threshold(100_000, 10, 10)
    from ltosyms.cli import main as cli_main

    cli_main()
