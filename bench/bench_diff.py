#!/usr/bin/env python3
"""Time ``ltosyms diff`` on two Debian-sized vmlinux files, with the kernel's bloat-o-meter as
the peer.

The pair is the Debian 6.1 cloud vmlinux (590 MB, gcc 12, 164 MB of .debug_info) against
itself, opened twice as two files would be. Measured:

- the symbol and size parts (``--no-dwarf``): section classes, groups, matching, classes;
- the full diff, whose DWARF census walks all of .debug_info of both builds;
- ``scripts/bloat-o-meter`` from the kernel source package on the same pair (it runs
  ``nm --size-sort`` twice), extracted once into a cache folder.

Optionally (``--pair BASE NEW``) the same on another pair, e.g. the corpus clang kernels.

``--screenshot PNG`` also writes the HTML report of the pair and renders it with headless
Chromium (installed with apt-get when missing), to look at the charts.

Usage: python3 bench/bench_diff.py [--repeat N] [--pair BASE NEW] [--skip-dwarf]
                                   [--screenshot PNG]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from ltosyms.diff import diff_images  # noqa: E402

CORPUS = Path(os.environ.get("LTOSYMS_CORPUS", PROJECT.parent / "shared" / "corpus"))
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ltosyms-bench"
KERNEL_SOURCE = Path("/usr/src/linux-source-6.1.tar.xz")
BLOAT_MEMBER = "linux-source-6.1/scripts/bloat-o-meter"


def debian_vmlinux() -> Path:
    script = CORPUS / "debian-6.1.0-57-cloud-amd64" / "get-vmlinux.sh"
    output = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=True)
    return Path(output.stdout.strip().splitlines()[-1])


def bloat_o_meter() -> Path | None:
    """scripts/bloat-o-meter from the kernel source package, extracted once."""
    target = CACHE / "bloat-o-meter"
    if target.is_file():
        return target
    if not KERNEL_SOURCE.is_file() or shutil.which("tar") is None:
        return None
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["tar", "-xJf", str(KERNEL_SOURCE), "-C", str(CACHE), "--strip-components=2", BLOAT_MEMBER],
        check=True,
    )
    return target if target.is_file() else None


def timed(label: str, repeat: int, action: object) -> float:
    assert callable(action)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    best = min(times)
    print(f"{label:<52} best {best:7.2f} s  median {statistics.median(times):7.2f} s  (n={repeat})")
    return best


def screenshot(base: Path, new: Path, png: Path) -> None:
    """Render the HTML report of the pair in headless Chromium."""
    from ltosyms.render.diff_html import render_html

    if shutil.which("chromium") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True)
    page = png.with_suffix(".html")
    page.write_text(render_html(diff_images(base, new)), encoding="utf-8")
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--screenshot={png}",
            "--window-size=1200,2400",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    print(f"HTML {page}, screenshot {png}")


def run_pair(base: Path, new: Path, repeat: int, skip_dwarf: bool) -> None:
    print(f"BASE {base} ({base.stat().st_size / 1e6:.0f} MB)")
    print(f"NEW  {new} ({new.stat().st_size / 1e6:.0f} MB)")
    ours = timed(
        "ltosyms diff --no-dwarf (symbols and sizes)",
        repeat,
        lambda: diff_images(base, new, use_dwarf=False),
    )
    if not skip_dwarf:
        reports = []
        timed(
            "ltosyms diff (with DWARF census of both)",
            1,
            lambda: reports.append(diff_images(base, new)),
        )
        report = reports[-1]
        print(
            f"  DWARF census: BASE {report.base.dwarf_seconds:.1f} s, "
            f"NEW {report.new.dwarf_seconds:.1f} s"
        )
        classes = Counter(
            c.change_class.value for c in report.changes if c.kind.value == "function"
        )
        print("  function classes:", ", ".join(f"{k} {v}" for k, v in sorted(classes.items())))
    script = bloat_o_meter()
    if script is None or shutil.which("nm") is None:
        print("bloat-o-meter: not available (needs", KERNEL_SOURCE, "and nm)")
        return
    peer = timed(
        "scripts/bloat-o-meter (peer)",
        repeat,
        lambda: subprocess.run(
            [sys.executable, str(script), str(base), str(new)], capture_output=True, check=True
        ),
    )
    print(f"ratio ltosyms --no-dwarf / bloat-o-meter: {ours / peer:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pair", nargs=2, type=Path, metavar=("BASE", "NEW"))
    parser.add_argument("--skip-dwarf", action="store_true")
    parser.add_argument("--screenshot", type=Path, metavar="PNG")
    args = parser.parse_args()
    if args.pair:
        run_pair(args.pair[0], args.pair[1], args.repeat, args.skip_dwarf)
        if args.screenshot:
            screenshot(args.pair[0], args.pair[1], args.screenshot)
        return
    debian = debian_vmlinux()
    run_pair(debian, debian, args.repeat, args.skip_dwarf)


if __name__ == "__main__":
    main()
