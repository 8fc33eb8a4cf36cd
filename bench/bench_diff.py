#!/usr/bin/env python3
"""Time ``ltosyms diff`` against the kernel's scripts/bloat-o-meter, both in the same run.

Rows (issue #16, "Speed"), each the median of ``--repeat`` runs, CPU time (user + system of
the command's process and its children) and wall time:

- ``scripts/bloat-o-meter`` on the pair (the peer: two ``nm --size-sort`` and a dict);
- ``ltosyms diff --no-cache --format bloat-o-meter``: no DWARF is read unless asked;
- ``ltosyms diff --no-cache``, cold: both images' DWARF census (target: <= 5 s CPU for the
  corpus' small kernels);
- ``ltosyms diff`` with an empty index: the cold diff, which leaves both censuses in the index;
- ``ltosyms diff`` of two indexed images: both censuses read from the index, no symbol table,
  no DWARF (target: <= 2x bloat-o-meter), in text and as ``--format bloat-o-meter``.

Every command runs from bytecode, as an installed copy does: ltosyms' modules are compiled
once beforehand, what else a run imports by its first run, all under the bench's cache folder,
whatever PYTHONDONTWRITEBYTECODE says (see compile_once).

Pairs: the corpus' clang-nolto -> clang-thinlto and gcc-nolto -> gcc-lto, and Debian's 590 MB
vmlinux against itself (``--skip-debian`` leaves it out). scripts/bloat-o-meter comes from the
kernel source package (``/usr/src/linux-source-6.1.tar.xz``, extracted once) or a kernel tree
given with ``--kernel-tree``. ``--baseline-python PY`` adds the cold diff of another checkout
(the interpreter of its venv), e.g. the main branch, for a before/after in the same run.

Usage: python3 bench/bench_diff.py [--repeat N] [--skip-debian] [--debian-repeat N]
                                   [--kernel-tree DIR] [--baseline-python PY] [--screenshot PNG]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

CORPUS = Path(os.environ.get("LTOSYMS_CORPUS", PROJECT.parent / "shared" / "corpus"))
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ltosyms-bench"
KERNEL_SOURCE = Path("/usr/src/linux-source-6.1.tar.xz")
BLOAT_MEMBER = "linux-source-6.1/scripts/bloat-o-meter"


def corpus_vmlinux(*args: str) -> Path:
    script = (
        CORPUS / "kernels" / "get-vmlinux.sh"
        if args
        else CORPUS / "debian-6.1.0-57-cloud-amd64" / "get-vmlinux.sh"
    )
    output = subprocess.run(["sh", str(script), *args], capture_output=True, text=True, check=True)
    return Path(output.stdout.strip().splitlines()[-1])


def bloat_o_meter(kernel_tree: Path | None) -> Path | None:
    """scripts/bloat-o-meter of a kernel tree, or from the kernel source package (once)."""
    if kernel_tree is not None:
        script = kernel_tree / "scripts" / "bloat-o-meter"
        return script if script.is_file() else None
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


def compile_once() -> None:
    """Every run below imports its modules from bytecode, as an installed copy and the
    interpreter's own library have it (pip compiles at install): ltosyms' modules are compiled
    here once, and what else a run imports (click, the standard library, for the peer too) is
    compiled by its first run. All of it goes under the bench's cache folder
    (PYTHONPYCACHEPREFIX), which is why writing it must be allowed: with
    PYTHONDONTWRITEBYTECODE set as well, every run would compile click and the standard library
    modules it imports from source again (150 ms of an indexed diff), as no user's does."""
    os.environ["PYTHONPYCACHEPREFIX"] = str(CACHE / "pycache")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(PROJECT / "ltosyms")], check=True)


def run_command(command: Sequence[str]) -> tuple[float, float]:
    """(CPU seconds of the command and its children, wall seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def run_first(command: Sequence[str]) -> tuple[float, float]:
    """``run_command`` with an index folder of its own, empty."""
    with tempfile.TemporaryDirectory(dir=CACHE) as empty:
        return run_command([*command, "--cache-dir", empty])


class Rows:
    def __init__(self, repeat: int) -> None:
        self.repeat = repeat
        self.peer_cpu: float | None = None
        print(f"{'':<64} {'CPU s':>7} {'wall s':>7} {'CPU/peer':>9}")

    def measure(self, label: str, once: Callable[[], tuple[float, float]]) -> float:
        # Interleaving would be fairer, but each row's runs share the caches they warm. One run
        # first, not measured: it compiles the bytecode of what it imports (compile_once).
        once()
        samples = [once() for _ in range(self.repeat)]
        label += f" (n={self.repeat})" if self.repeat != 1 else ""
        cpu = statistics.median(sample[0] for sample in samples)
        wall = statistics.median(sample[1] for sample in samples)
        ratio = f"{cpu / self.peer_cpu:8.1f}x" if self.peer_cpu else ""
        print(f"{label:<64} {cpu:7.2f} {wall:7.2f} {ratio:>9}")
        return cpu


def bench_pair(
    rows: Rows,
    label: str,
    base: Path,
    new: Path,
    script: Path | None,
    baseline_python: str | None,
) -> None:
    print(f"== {label}: {base} ({base.stat().st_size / 1e6:.0f} MB) -> {new}")
    ltosyms = [sys.executable, "-m", "ltosyms", "diff", str(base), str(new)]
    cold = [*ltosyms, "--no-cache"]
    rows.peer_cpu = None
    if script is not None and shutil.which("nm") is not None:
        rows.peer_cpu = rows.measure(
            "scripts/bloat-o-meter (peer)",
            lambda: run_command([sys.executable, str(script), str(base), str(new)]),
        )
    else:
        print("scripts/bloat-o-meter: not available (kernel source package or --kernel-tree)")
    rows.measure(
        "ltosyms diff --no-cache --format bloat-o-meter (no DWARF)",
        lambda: run_command([*cold, "--format", "bloat-o-meter"]),
    )
    rows.measure("ltosyms diff --no-cache, cold (DWARF census of both)", lambda: run_command(cold))
    if baseline_python:
        rows.measure(
            "  the same with --baseline-python (no index)",
            lambda: run_command([baseline_python, "-m", "ltosyms", "diff", str(base), str(new)]),
        )
    rows.measure(
        "ltosyms diff, empty index (takes and keeps the censuses)", lambda: run_first(ltosyms)
    )
    with tempfile.TemporaryDirectory(dir=CACHE) as folder:
        indexed = [*ltosyms, "--cache-dir", folder]
        for options in ([], ["--format", "bloat-o-meter"]):
            run_command([*indexed, *options])  # the census this row reads
        rows.measure("ltosyms diff, two indexed images", lambda: run_command(indexed))
        rows.measure(
            "ltosyms diff --format bloat-o-meter, two indexed images",
            lambda: run_command([*indexed, "--format", "bloat-o-meter"]),
        )


def screenshot(base: Path, new: Path, png: Path) -> None:
    """Render the HTML report of the pair in headless Chromium, to look at it."""
    from ltosyms.diff import diff_images
    from ltosyms.render.diff_html import render_html

    page = png.with_suffix(".html")
    page.write_text(render_html(diff_images(base, new)), encoding="utf-8")
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=10000",
            f"--screenshot={png}",
            "--window-size=1300,3000",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    print(f"HTML {page}, screenshot {png}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-debian", action="store_true")
    parser.add_argument("--debian-repeat", type=int, default=1, metavar="N")
    parser.add_argument("--kernel-tree", type=Path)
    parser.add_argument("--baseline-python", metavar="PY")
    parser.add_argument("--screenshot", type=Path, metavar="PNG")
    args = parser.parse_args()
    script = bloat_o_meter(args.kernel_tree)
    CACHE.mkdir(parents=True, exist_ok=True)
    compile_once()
    rows = Rows(args.repeat)
    pairs = [
        ("clang-nolto -> clang-thinlto", "clang-nolto", "clang-thinlto"),
        ("gcc-nolto -> gcc-lto", "gcc-nolto", "gcc-lto"),
    ]
    for label, base, new in pairs:
        bench_pair(
            rows,
            label,
            corpus_vmlinux(base),
            corpus_vmlinux(new),
            script,
            args.baseline_python,
        )
    if not args.skip_debian:
        debian = corpus_vmlinux()
        rows.repeat = args.debian_repeat
        bench_pair(rows, "Debian 6.1 cloud, against itself", debian, debian, script, None)
    if args.screenshot:
        screenshot(corpus_vmlinux("clang-nolto"), corpus_vmlinux("clang-thinlto"), args.screenshot)


if __name__ == "__main__":
    main()
