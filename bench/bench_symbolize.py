#!/usr/bin/env python3
"""The target rows of issue 15, through the commands as users run them, against
llvm-symbolizer on the same addresses in the same run; prints every row, met or not.

ltosyms is timed as an installed wheel with its bytecode kept (``pip install`` of this tree
into a venv of its own under the bench cache, or ``--python``); ``--main-python`` names the
interpreter of another installed ltosyms (say the main branch) for the rows that must be no
slower than it.

Rows, each command a fresh process, every ltosyms run on a copy of the index as ``ltosyms
index`` left it (no run finds answers an earlier one stored):

* ``ltosyms index --jobs N`` of the vmlinux (target on Debian: <= 15 s, index files <= 60 MB);
  the modules are indexed next into the same folder (not timed);
* 2,000 random call return addresses of ``.text`` (seed 15) never asked before:
  ``ltosyms symbolize -R`` from stdin vs ``llvm-symbolizer --inlining`` at each address - 1
  (target <= 0.5x, on Debian and the clang ThinLTO kernel); with ``--main-python``, the other
  ltosyms after its own index too, and whether both print the same bytes;
* Debian: ``console-sysrq-nooops.log`` decoded once with its modules vs llvm-symbolizer on its
  unique vmlinux lookup addresses (target <= 1.0x);
* Debian: every call return address of ``.text`` (218K) through ``symbolize -R`` from stdin
  (target <= 1.0x llvm-symbolizer, peak RSS <= 1 GiB, first answer out within 1 s; output to a
  pipe is block-buffered, so "first out" is when the first 8 KB arrive);
* the 2,000 and the 218K ``-R`` rows again with ``--jobs N`` (``--symbolize-jobs``, default 2:
  worker processes answering; peak RSS is the sum over the process tree), and whether they
  print the same bytes as one process;
* with both address sets, ``symbolize`` of each return address - 1 as an exact IP: the
  lookups llvm-symbolizer makes, without the search for the call instruction that ``-R``
  adds (a few instructions decoded from the start of the line-table row holding it, or the
  function's instructions up to it where no row is known);
* Debian, with ``--main-python``: ``decode console-sysrq.log`` cold (empty index folder) and
  warm (the same log again), this ltosyms vs the other (target: no slower).

Rounds are interleaved and each row keeps its median over ``--repeat`` rounds (the machine is
shared: ratios, not seconds, are the result); the 218K row runs once.

    python3 bench/bench_symbolize.py [--kernel debian --kernel clang-thinlto] [--repeat N]
        [--jobs N] [--symbolize-jobs N] [--python PY] [--main-python PY] [--skip-bulk]
"""

from __future__ import annotations

import argparse
import json
import posixpath
import random
import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_table import (
    BENCH_CACHE,
    CORPUS,
    LLVM,
    PROJECT,
    SAMPLE_SIZE,
    SEED,
    Run,
    call_return_addresses,
    run,
    vmlinux_path,
)

DEBIAN = CORPUS / "debian-6.1.0-57-cloud-amd64"
VENV = BENCH_CACHE / "venv-symbolize"
RSS_TARGET_MIB = 1024.0


@dataclass
class Row:
    name: str
    kernel: str
    target: str  # what the issue asks of the row, in words
    runs: list[Run] = field(default_factory=list)
    peer: Row | None = None  # the row its ratio is taken against
    limit: float | None = None  # the highest ratio to the peer that meets the target
    extra: str = ""

    def median(self, name: str) -> float:
        values = [getattr(r, name) for r in self.runs if getattr(r, name) is not None]
        return statistics.median(values) if values else float("nan")


def install(python: str | None) -> list[str]:
    """The ltosyms command of ``python``'s environment, or of a venv this tree is installed
    into (bytecode compiled at install, as a user's ``pip install`` leaves it)."""
    if python is None:
        if not (VENV / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, str(PROJECT)], check=True)
        subprocess.run([*pip, "--force-reinstall", "--no-deps", str(PROJECT)], check=True)
        python = str(VENV / "bin" / "python")
    return [str(Path(python).parent / "ltosyms")]


def lookup_addresses(log_name: str) -> list[int]:
    """The unique vmlinux lookup addresses of a Debian log (the corpus's expected frames)."""
    frames = json.loads((DEBIAN / "expected" / "frames.json").read_text())
    return sorted(
        {int(f["lookup_address"], 16) for f in frames if f["log"] == log_name and not f["module"]}
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", action="append", help="debian or a corpus kernel variant")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each short row")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes of the index")
    parser.add_argument(
        "--symbolize-jobs", type=int, default=2, help="worker processes of symbolize's --jobs rows"
    )
    parser.add_argument("--python", help="interpreter of an installed ltosyms to time")
    parser.add_argument("--main-python", help="interpreter of the ltosyms to compare with")
    parser.add_argument("--skip-bulk", action="store_true", help="leave out the 218K row")
    options = parser.parse_args()
    if shutil.which("llvm-symbolizer") is None:
        raise SystemExit("llvm-symbolizer not found: it is the peer of every row")
    ours = install(options.python)
    other = install(options.main_python) if options.main_python else None
    work = BENCH_CACHE / "symbolize"
    work.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    notes: list[str] = []
    for kernel in options.kernel or ["debian", "clang-thinlto"]:
        rows.extend(bench_kernel(kernel, ours, other, options, work, notes))
    print_rows(rows, notes)
    return 0


def bench_kernel(
    kernel: str,
    ours: list[str],
    other: list[str] | None,
    options: argparse.Namespace,
    work: Path,
    notes: list[str],
) -> list[Row]:
    vmlinux = vmlinux_path(kernel)
    with open(vmlinux, "rb") as file:  # into the page cache, before anything is timed
        while file.read(1 << 24):
            pass
    modules = DEBIAN / "modules" if kernel == "debian" else CORPUS / "kernels" / kernel
    print(f"{kernel}: {vmlinux}", file=sys.stderr)
    rows: list[Row] = []

    # The index: this ltosyms (timed, then the modules), the other one (timed).
    pristine = work / f"index-{kernel}"
    shutil.rmtree(pristine, ignore_errors=True)
    index_argv = ["index", "--jobs", str(options.jobs), "--json", "--cache-dir"]
    built = run([*ours, *index_argv, str(pristine), str(vmlinux)])
    (report,) = json.loads(built.output)["images"]
    run([*ours, *index_argv, str(pristine), str(vmlinux), "--modules", str(modules)])
    index_row = Row("ltosyms index --jobs N (vmlinux)", kernel, "<= 15 s, <= 60 MB", [built])
    index_row.extra = (
        f"{report['size_bytes'] / 1e6:.1f} MB of index files (address table "
        f"{report['table_bytes'] / 1e6:.1f} MB)"
    )
    rows.append(index_row)
    other_index = work / f"index-other-{kernel}"
    if other is not None:
        shutil.rmtree(other_index, ignore_errors=True)
        other_built = run([*other, "index", "--jobs", str(options.jobs), "--cache-dir",
                           str(other_index), str(vmlinux)])  # fmt: skip
        rows.append(Row("other ltosyms index --jobs N", kernel, "", [other_built]))
        run([*other, "index", "--jobs", str(options.jobs), "--cache-dir", str(other_index),
             str(vmlinux), "--modules", str(modules)])  # fmt: skip

    scratch = work / "scratch"

    def fresh(source: Path) -> str:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.copytree(source, scratch)
        return str(scratch)

    def llvm(addresses: list[int]) -> Run:
        text = "".join(f"{a:#x}\n" for a in addresses).encode()
        return run([*LLVM.split(), "--obj", str(vmlinux)], text)

    def symbolize(command: list[str], index: Path, returns: list[int], jobs: int = 1) -> Run:
        text = "".join(f"{a:x}\n" for a in returns).encode()
        argv = [*command, "symbolize", "-R", "--cache-dir", fresh(index), str(vmlinux)]
        return run([*argv, "--jobs", str(jobs)] if jobs > 1 else argv, text)

    jobs = options.symbolize_jobs

    def exact(command: list[str], index: Path, returns: list[int]) -> Run:
        # The lookups llvm-symbolizer makes (return - 1 as an exact IP): no call instruction
        # is looked for, so no function is disassembled.
        text = "".join(f"{a - 1:x}\n" for a in returns).encode()
        return run([*command, "symbolize", "--cache-dir", fresh(index), str(vmlinux)], text)

    def measure(measured: dict[str, Callable[[], Run]], found: dict[str, Row]) -> None:
        for round_number in range(options.repeat):
            for name, once in measured.items():
                print(f"  {kernel}: {name} (round {round_number + 1})", file=sys.stderr)
                found[name].runs.append(once())

    # 2,000 return addresses never asked before.
    returns = call_return_addresses(vmlinux, work)
    chosen = random.Random(SEED).sample(returns, min(SAMPLE_SIZE, len(returns)))
    peer = Row(f"{LLVM} (2,000 at return - 1)", kernel, "")
    mine = Row("ltosyms symbolize -R (2,000)", kernel, "<= 0.5x", peer=peer, limit=0.5)
    lookups = Row("ltosyms symbolize, exact IPs at return - 1 (2,000)", kernel, "", peer=peer)
    shared = Row(f"ltosyms symbolize -R --jobs {jobs} (2,000)", kernel, "<= 0.5x", peer=peer,
                 limit=0.5)  # fmt: skip
    measured = {
        peer.name: lambda: llvm([a - 1 for a in chosen]),
        mine.name: lambda: symbolize(ours, pristine, chosen),
        shared.name: lambda: symbolize(ours, pristine, chosen, jobs),
        lookups.name: lambda: exact(ours, pristine, chosen),
    }
    found = {peer.name: peer, mine.name: mine, shared.name: shared, lookups.name: lookups}
    if other is not None:
        theirs = Row("other ltosyms symbolize -R (2,000)", kernel, "", peer=peer)
        measured[theirs.name] = lambda: symbolize(other, other_index, chosen)
        found[theirs.name] = theirs
    measure(measured, found)
    rows.extend(found.values())
    same_as_one = found[shared.name].runs[0].output == found[mine.name].runs[0].output
    notes.append(
        f"{kernel}: symbolize -R --jobs {jobs} of the 2,000 vs one process: "
        f"{'identical' if same_as_one else 'DIFFERENT'}"
    )
    if other is not None:
        same = found[mine.name].runs[0].output == found[theirs.name].runs[0].output
        lines = found[mine.name].runs[0].output.count(b"\n")
        notes.append(
            f"{kernel}: symbolize -R of the 2,000 with the table vs the other ltosyms with "
            f"units: {'identical' if same else 'DIFFERENT'} ({lines:,} lines)"
        )
    if kernel != "debian":
        return rows

    # A log never decoded before, with its modules.
    log = DEBIAN / "logs" / "console-sysrq-nooops.log"
    unique = lookup_addresses(log.name)
    log_peer = Row(f"{LLVM} ({len(unique)} unique addresses of the nooops log)", kernel, "")
    log_row = Row("ltosyms decode nooops log (modules)", kernel, "<= 1.0x", peer=log_peer, limit=1)
    decode_argv = ["decode", str(vmlinux), str(log), "--modules", str(modules), "--cache-dir"]
    measure(
        {
            log_peer.name: lambda: llvm(unique),
            log_row.name: lambda: run([*ours, *decode_argv, fresh(pristine)]),
        },
        {log_peer.name: log_peer, log_row.name: log_row},
    )
    rows.extend([log_peer, log_row])

    # Cold and warm decode, this ltosyms vs the other.
    if other is not None:
        sysrq = DEBIAN / "logs" / "console-sysrq.log"
        decoded: dict[str, Row] = {}
        measured = {}
        for who, command in (("other", other), ("ltosyms", ours)):
            for state in ("cold", "warm"):
                name = f"{who} decode console-sysrq.log {state}"
                decoded[name] = Row(name, kernel, "no slower than the other" if who == "ltosyms"
                                    else "")  # fmt: skip

            def cold_then_warm(command: list[str] = command, who: str = who) -> Run:
                cache = work / f"decode-{who}"
                shutil.rmtree(cache, ignore_errors=True)
                argv = [*command, "decode", str(vmlinux), str(sysrq), "--modules", str(modules)]
                argv += ["--cache-dir", str(cache)]
                decoded[f"{who} decode console-sysrq.log cold"].runs.append(run(argv))
                return run(argv)

            measured[f"{who} decode console-sysrq.log warm"] = cold_then_warm
        measure(measured, decoded)
        for state in ("cold", "warm"):
            decoded[f"ltosyms decode console-sysrq.log {state}"].peer = decoded[
                f"other decode console-sysrq.log {state}"
            ]
            decoded[f"ltosyms decode console-sysrq.log {state}"].limit = 1.0
        rows.extend(decoded.values())

    # Every call return address of .text, once.
    if not options.skip_bulk:
        bulk_peer = Row(f"{LLVM} ({len(returns):,} at return - 1)", kernel, "")
        bulk = Row(
            f"ltosyms symbolize -R ({len(returns):,}, stdin)",
            kernel,
            "<= 1.0x, <= 1 GiB, first out <= 1 s",
            peer=bulk_peer,
            limit=1.0,
        )
        print(f"  {kernel}: bulk", file=sys.stderr)
        bulk_lookups = Row(
            f"ltosyms symbolize, exact IPs at return - 1 ({len(returns):,}, stdin)",
            kernel,
            "",
            peer=bulk_peer,
        )
        bulk_shared = Row(
            f"ltosyms symbolize -R --jobs {jobs} ({len(returns):,}, stdin)",
            kernel,
            "<= 1.0x, <= 1 GiB, first out <= 1 s",
            peer=bulk_peer,
            limit=1.0,
        )
        bulk_peer.runs.append(llvm([a - 1 for a in returns]))
        bulk_lookups.runs.append(exact(ours, pristine, returns))
        bulk.runs.append(symbolize(ours, pristine, returns))
        bulk_shared.runs.append(symbolize(ours, pristine, returns, jobs))
        rows.extend([bulk_peer, bulk_lookups, bulk, bulk_shared])
        same_as_one = bulk_shared.runs[0].output == bulk.runs[0].output
        notes.append(
            f"{kernel}: symbolize -R --jobs {jobs} of all {len(returns):,} vs one process: "
            f"{'identical' if same_as_one else 'DIFFERENT'}"
        )
        for compared, what in ((bulk, "symbolize -R"), (bulk_lookups, "symbolize at return - 1")):
            notes.append(
                f"{kernel}: {what} of all {len(returns):,} vs {LLVM} at return - 1: "
                + chains_agreement(compared.runs[0].output, bulk_peer.runs[0].output)
            )
    return rows


# An answer's source line as `symbolize` prints it: `    path:line[:column]  function`.
_OUR_LOCATION = re.compile(r"^    (\S+?):(\d+)(?::(\d+))?  ")


def chains_agreement(ours: bytes, llvm: bytes) -> str:
    """How many answers give the same inline chain of file:line:column as llvm-symbolizer
    (its paths keep `..` and are absolute, ours are normalized and relative to the build: a
    path agrees when it ends with ours); the first differing answers named."""
    our_chains: list[list[tuple[str, int, int]]] = []
    for line in ours.decode().splitlines():
        if not line.startswith(" "):
            our_chains.append([])
        elif (match := _OUR_LOCATION.match(line)) is not None and our_chains:
            our_chains[-1].append((match[1], int(match[2]), int(match[3] or 0)))
    llvm_chains: list[list[tuple[str, int, int]]] = []
    for block in llvm.decode().strip("\n").split("\n\n"):
        frames = block.split("\n")[1::2]  # function, then path:line:column
        chain = []
        for frame in frames:
            path, line_number, column = frame.rsplit(":", 2)
            if path != "??" and line_number != "0":  # line 0: no line, as ours says
                chain.append((posixpath.normpath(path), int(line_number), int(column)))
        llvm_chains.append(chain)
    if len(our_chains) != len(llvm_chains):
        return f"{len(our_chains):,} answers against {len(llvm_chains):,}: not compared"
    differing = [
        position
        for position, (mine, theirs) in enumerate(zip(our_chains, llvm_chains, strict=True))
        if len(mine) != len(theirs)
        or any(
            (line, column) != (their_line, their_column)
            or not (path == their_path or their_path.endswith("/" + path))
            for (path, line, column), (their_path, their_line, their_column) in zip(
                mine, theirs, strict=True
            )
        )
    ]
    agreed = len(our_chains) - len(differing)
    text = f"the same file:line:column chain in {agreed:,} of {len(our_chains):,} answers"
    return text + (f" (first differing answers: {differing[:5]})" if differing else "")


def print_rows(rows: list[Row], notes: list[str]) -> None:
    print()
    print("| kernel | command | target | seconds (median) | runs | first out s | peak RSS MiB "
          "| ratio | met |")  # fmt: skip
    print("|---|---|---|---:|---:|---:|---:|---:|---|")
    for row in rows:
        seconds = row.median("seconds")
        ratio, met = "", ""
        if row.peer is not None:
            ratio_value = seconds / row.peer.median("seconds")
            ratio = f"{ratio_value:.2f}x"
            if row.limit is not None:
                met = "yes" if ratio_value <= row.limit else "NO"
        rss = row.median("peak_rss_mib")
        first = row.median("first_output")
        if row.name.startswith("ltosyms index"):
            size = float(row.extra.split(" MB")[0])
            met = "yes" if seconds <= 15 and size <= 60 else "NO"
        if "GiB" in row.target and not (rss <= RSS_TARGET_MIB and first <= 1.0 and met == "yes"):
            met = "NO"
        print(
            f"| {row.kernel} | {row.name} | {row.target} | {seconds:.2f} | {len(row.runs)} | "
            f"{first:.2f} | {rss:.0f} | {ratio} | {met} |"
        )
        if row.extra:
            print(f"| | ({row.extra}) | | | | | | | |")
    for note in notes:
        print(f"\n{note}")


if __name__ == "__main__":
    sys.exit(main())
