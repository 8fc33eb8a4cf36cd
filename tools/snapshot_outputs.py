"""Write what every command prints on the corpus kernels to a folder, or compare with one.

A refactoring must not change what users see. This runs ``decode`` (text cold and warm,
``--no-cache``, ``--json``, ``--format decode-stacktrace``), ``symbolize`` (every printed
``name+off/size`` of the log, as return addresses and as exact IPs), ``kallsyms-check``
(text and ``--json``, against the kernel's own System.map or ``/proc/kallsyms``) and ``diff``
(text, ``--json``, ``--format bloat-o-meter``) on every corpus kernel, and keeps stdout,
stderr and the exit status of each run in one file per run.

Usage::

    python tools/snapshot_outputs.py write DIR [--skip-diff] [--only NAME ...]
    python tools/snapshot_outputs.py compare DIR [--skip-diff] [--only NAME ...]

NAME is a kernel (``clang-thinlto`` ... ``debian``) or ``mismatch`` (a log decoded against
another kernel's vmlinux).

``compare`` runs everything again and lists the runs whose output differs from ``DIR``
(exit 1), or says that all are identical; the time a diff took to read DWARF (its header
line and ``dwarf_seconds``) is not compared. The corpus is ``../shared/corpus`` or
``$LTOSYMS_CORPUS``; the commands run as ``python -m ltosyms`` with this interpreter, each
decode with a fresh index folder of its own.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT / "tests"))

from conftest import Corpus, _corpus_root  # noqa: E402

SMALL_KERNELS = (
    "clang-thinlto",
    "clang-nolto",
    "gcc-nolto",
    "arm64-clang-thinlto",
    "clang-thinlto-6.12",
    "gcc-lto",
)
DIFF_PAIRS = (
    ("clang-nolto", "clang-thinlto"),
    ("gcc-nolto", "clang-thinlto"),
    ("gcc-nolto", "gcc-lto"),
)
# name+0xOFF/0xSIZE [module], as a trace prints a frame.
_FRAME = re.compile(r"(?:\? )?([\w.$]+\+0x[0-9a-f]+/0x[0-9a-f]+)(?: \[(\w+)[^\]]*\])?")


@dataclass(frozen=True)
class Run:
    name: str  # file name of its output
    arguments: tuple[str, ...]
    stdin: bytes | None = None
    cache: str | None = None  # cache folder name: runs sharing one see each other's index


@dataclass(frozen=True)
class Kernel:
    name: str
    vmlinux: Path
    logs: tuple[Path, ...]
    modules: Path
    dump_option: str
    dump: Path


def kernels(corpus: Corpus, only: set[str]) -> Iterator[Kernel]:
    for variant in SMALL_KERNELS:
        if only and variant not in only:
            continue
        folder = corpus.kernels / variant
        yield Kernel(
            variant,
            corpus.kernel_vmlinux(variant),
            (folder / "console.log",),
            folder,
            "--system-map",
            folder / "System.map",
        )
    if not only or "debian" in only:
        logs = corpus.debian / "logs"
        yield Kernel(
            "debian",
            corpus.debian_vmlinux(),
            (logs / "console-sysrq.log", logs / "console-sysrq-nooops.log"),
            corpus.debian / "modules",
            "--kallsyms",
            corpus.debian / "kallsyms" / "proc-kallsyms.txt",
        )


def printed_frames(log: Path) -> list[str]:
    """Every distinct ``name+off/size [module]`` the log prints, in order."""
    seen: dict[str, None] = {}
    for line in log.read_bytes().decode("utf-8", "replace").splitlines():
        for match in _FRAME.finditer(line):
            text = match.group(1) + (f" [{match.group(2)}]" if match.group(2) else "")
            seen.setdefault(text, None)
    return list(seen)


def runs(corpus: Corpus, only: set[str], skip_diff: bool) -> Iterator[Run]:
    for kernel in kernels(corpus, only):
        vmlinux, modules = str(kernel.vmlinux), str(kernel.modules)
        for log in kernel.logs:
            stem = f"{kernel.name}.{log.stem}"
            decode = ("decode", vmlinux, str(log), "--modules", modules)
            cache = f"{stem}.cache"
            yield Run(f"{stem}.decode.cold", decode, cache=cache)
            yield Run(f"{stem}.decode.warm", decode, cache=cache)
            yield Run(f"{stem}.decode.json", (*decode, "--json"), cache=cache)
            yield Run(
                f"{stem}.decode.decode-stacktrace",
                (*decode, "--format", "decode-stacktrace"),
                cache=cache,
            )
            yield Run(f"{stem}.decode.no-cache", (*decode, "--no-cache"))
            queries = "\n".join(printed_frames(log)).encode() + b"\n"
            symbolize = ("symbolize", vmlinux, "--modules", modules)
            yield Run(f"{stem}.symbolize.R", (*symbolize, "-R"), queries, cache=cache)
            yield Run(f"{stem}.symbolize.R.json", (*symbolize, "-R", "--json"), queries, cache)
            yield Run(f"{stem}.symbolize.ip", symbolize, queries, cache=cache)
        check = ("kallsyms-check", vmlinux, kernel.dump_option, str(kernel.dump))
        yield Run(f"{kernel.name}.kallsyms-check", check)
        yield Run(f"{kernel.name}.kallsyms-check.json", (*check, "--json"))
    if not only or "mismatch" in only:
        # The wrong vmlinux for a log: warnings naming the evidence, exit 3.
        log = corpus.kernels / "clang-thinlto" / "console.log"
        wrong = ("decode", str(corpus.kernel_vmlinux("gcc-nolto")), str(log))
        yield Run("mismatch.decode", (*wrong, "--no-cache"))
        yield Run("mismatch.decode.json", (*wrong, "--no-cache", "--json"))
    if skip_diff:
        return
    for base, new in DIFF_PAIRS:
        if only and not {base, new} <= only:
            continue
        diff = ("diff", str(corpus.kernel_vmlinux(base)), str(corpus.kernel_vmlinux(new)))
        yield Run(f"diff.{base}.{new}", diff)
        yield Run(f"diff.{base}.{new}.json", (*diff, "--json"))
        yield Run(f"diff.{base}.{new}.bloat-o-meter", (*diff, "--format", "bloat-o-meter"))


def execute(run: Run, caches: Path) -> bytes:
    """stdout, stderr and exit status of ``run`` as one file's bytes."""
    environment = dict(os.environ)
    if run.cache is not None:
        environment["LTOSYMS_CACHE_DIR"] = str(caches / run.cache)
    result = subprocess.run(
        [sys.executable, "-m", "ltosyms", *run.arguments],
        input=run.stdin if run.stdin is not None else b"",
        capture_output=True,
        env=environment,
        timeout=900,
        check=False,
    )
    # Paths of temporary folders are not part of what the command says.
    stderr = result.stderr.replace(str(caches).encode(), b"<caches>")
    return (
        b"== exit "
        + str(result.returncode).encode()
        + b"\n== stdout\n"
        + result.stdout
        + b"\n== stderr\n"
        + stderr
    )


# What a diff measures of its own run (how long reading DWARF took): a fact of the machine, not of
# the output. Compared as "<seconds>".
_TIMINGS = (
    re.compile(rb"(DWARF read in )[0-9.]+( s)"),
    re.compile(rb'("dwarf_seconds": )[0-9.]+'),
)


def _without_timings(output: bytes) -> bytes:
    for timing in _TIMINGS:
        output = timing.sub(rb"\1<seconds>\2" if timing.groups == 2 else rb"\1<seconds>", output)
    return output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("write", "compare"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--skip-diff", action="store_true", help="leave the diff runs out")
    parser.add_argument("--only", nargs="*", default=[], help="these kernels only")
    arguments = parser.parse_args()
    corpus = Corpus(_corpus_root())
    folder: Path = arguments.folder
    if arguments.mode == "write":
        folder.mkdir(parents=True, exist_ok=True)
    differing: list[str] = []
    count = 0
    with tempfile.TemporaryDirectory(prefix="ltosyms-snapshot-") as temporary:
        for run in runs(corpus, set(arguments.only), arguments.skip_diff):
            output = execute(run, Path(temporary))
            count += 1
            path = folder / run.name
            if arguments.mode == "write":
                path.write_bytes(output)
                print(f"wrote {path}", flush=True)
                continue
            before = path.read_bytes() if path.is_file() else b""
            if _without_timings(before) != _without_timings(output):
                differing.append(run.name)
                print(f"DIFFERS {run.name}", flush=True)
                lines = difflib.unified_diff(
                    before.decode("utf-8", "replace").splitlines(),
                    output.decode("utf-8", "replace").splitlines(),
                    "before",
                    "now",
                    lineterm="",
                    n=1,
                )
                for line in list(lines)[:20]:
                    print("    " + line)
            else:
                print(f"same    {run.name}", flush=True)
    if arguments.mode == "compare":
        print(f"{count - len(differing)} of {count} runs identical")
        return 1 if differing else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
