#!/usr/bin/env python3
"""Run every hostile-input case of issue 17 and print one row per case.

Each case (``tests/hostile_inputs.py``: mutated ELF and DWARF built from the sample images,
endless and 200 MB logs made from the corpus, special files, planted symlinks, tampered index
files, slow loopback debuginfod servers) is built in a scratch folder and run as
``python -m ltosyms ...`` in a child process that

- has RLIMIT_AS set to ``--address-space`` GiB (an allocation beyond fails in the child),
- is killed (SIGKILL to its session, workers included) when its resident memory passes
  ``--rss-limit`` GiB or its time passes ``--time-limit`` seconds: the row then says
  ``killed (memory)`` or ``killed (time)`` instead of an exit code;
- for an endless source (``/dev/zero``, ``/dev/urandom``) runs ``--endless-seconds`` only:
  being killed by time there is the expected outcome, and the row shows the memory it held.

Columns: the issue's item, the case, which part of the work fixes it (1: this branch, 2: the
follow-up on the new layout), what the README promises (an exit code, or ``endless``), what
happened, peak RSS in MiB (the child's VmHWM when it exits, or the most our /proc sampling saw
of it and its workers: its ``wait4`` rusage would carry this process's own peak, which Linux
keeps across exec), seconds, and the first line of stderr, or the case's own finding (a file
created outside the cache, answers that differ from a ``--no-cache`` run) after ``!``.

    python3 tools/hostile_cases.py                 # every case (about 15 minutes)
    python3 tools/hostile_cases.py --item 4 --item 12
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT / "tests"))
sys.path.insert(0, str(PROJECT))

from hostile_inputs import CASES, GIB, MIB, run_case  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--item", type=int, action="append", default=[], help="only these items")
    parser.add_argument("--time-limit", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--endless-seconds", type=float, default=15.0, metavar="SECONDS")
    parser.add_argument("--rss-limit", type=float, default=3.0, metavar="GIB")
    parser.add_argument("--address-space", type=float, default=4.0, metavar="GIB")
    options = parser.parse_args()
    print(
        f"time limit {options.time_limit:g} s (endless sources {options.endless_seconds:g} s), "
        f"killed above {options.rss_limit:g} GiB RSS, RLIMIT_AS {options.address_space:g} GiB"
    )
    header = (
        f"{'item':>4}  {'case':<52} {'part':>4} {'expect':>7} {'got':>15} {'MiB':>6} {'s':>6}  "
    )
    print(header + "stderr (first line) / ! finding")
    for case in CASES:
        if options.item and case.item not in options.item:
            continue
        with tempfile.TemporaryDirectory(prefix="ltosyms-hostile-") as scratch:
            try:
                outcome, note = run_case(
                    case,
                    Path(scratch),
                    time_limit=options.time_limit,
                    endless_seconds=options.endless_seconds,
                    rss_limit=int(options.rss_limit * GIB),
                )
            except Exception as error:  # a case that cannot be built here (no corpus, ...)
                print(f"{case.item:>4}  {case.name:<52} not run: {type(error).__name__}: {error}")
                continue
        got = outcome.describe()
        detail = f"! {note}" if note else outcome.first_stderr_line[:110]
        print(
            f"{case.item:>4}  {case.name:<52} {case.part:>4} {case.expect:>7} {got:>15} "
            f"{outcome.peak_rss / MIB:>6.0f} {outcome.seconds:>6.1f}  {detail}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
