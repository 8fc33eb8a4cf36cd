#!/usr/bin/env python3
"""Throughput of the oops parser (``ltosyms.oops.iter_reports``) on the real corpus logs.

The input is the concatenation of every log of the corpus: the 747 syzkaller crash logs (many
kernel versions and architectures, report-dense), the two Debian serial console captures
(CRLF, sysrq dumps) and the four small-kernel lkdtm logs (one ends with a 20,000-line
/proc/kallsyms dump). Timed in memory (bytes in, reports out), best of ``--repeat`` runs, as
CPU time of this process (so that other load on the machine counts less) and as wall time.

``--memory N`` also streams the corpus N times over from a file on disk and prints the peak
Python heap (tracemalloc), to show that memory follows the largest report, not the input.

Usage: python3 bench/bench_parse.py [--repeat N] [--memory N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from ltosyms.oops import iter_reports  # noqa: E402

CORPUS = Path(os.environ.get("LTOSYMS_CORPUS", PROJECT.parent / "shared" / "corpus"))


def corpus_logs() -> list[bytes]:
    report_dir = CORPUS / "syzkaller" / "report"
    logs = [path.read_bytes() for path in sorted(report_dir.iterdir(), key=lambda p: int(p.name))]
    logs += [
        path.read_bytes()
        for path in sorted((CORPUS / "debian-6.1.0-57-cloud-amd64" / "logs").glob("*.log"))
    ]
    logs += [path.read_bytes() for path in sorted((CORPUS / "kernels").glob("*/console.log"))]
    return logs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs; the best one counts")
    parser.add_argument(
        "--memory",
        type=int,
        default=0,
        metavar="N",
        help="also stream the corpus N times from disk under tracemalloc",
    )
    args = parser.parse_args()
    if not (CORPUS / "README.md").is_file():
        sys.exit(f"corpus not found at {CORPUS} (set LTOSYMS_CORPUS)")
    logs = corpus_logs()
    data = b"\n".join(logs)
    megabytes = len(data) / 1e6
    lines = data.count(b"\n") + 1
    print(f"input: {len(logs)} logs, {megabytes:.2f} MB, {lines} lines")

    best_cpu = best_wall = float("inf")
    kinds: Counter[str] = Counter()
    frames = 0
    for _ in range(args.repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        reports = list(iter_reports(data))
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    kinds.update(report.kind.value for report in reports)
    frames = sum(len(trace.frames) for report in reports for trace in report.traces)
    print(f"reports: {len(reports)} ({sum(r.is_crash for r in reports)} crashes), frames: {frames}")
    print("kinds: " + ", ".join(f"{kind} {count}" for kind, count in kinds.most_common()))
    print(
        f"parse: {megabytes / best_cpu:.1f} MB/s CPU time ({best_cpu:.3f} s), "
        f"{megabytes / best_wall:.1f} MB/s wall ({best_wall:.3f} s), "
        f"{lines / best_cpu / 1e3:.0f}k lines/s, best of {args.repeat}"
    )

    if args.memory:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "big.log"
            with path.open("wb") as file:
                for _ in range(args.memory):
                    file.write(data + b"\n")
            size = path.stat().st_size / 1e6
            tracemalloc.start()
            count = 0
            with path.open("rb") as file:
                for _ in iter_reports(file):
                    count += 1  # reports are dropped as they come, as a streaming consumer would
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(
                f"streaming {size:.0f} MB from disk: {count} reports, "
                f"peak Python heap {peak / 1e6:.1f} MB"
            )


if __name__ == "__main__":
    main()
