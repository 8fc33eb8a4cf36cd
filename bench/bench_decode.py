#!/usr/bin/env python3
"""Time ltosyms and its peers on the same work, in one run, and print a table with ratios.

The work (issue "Persistent index and speed"): the Debian 6.1 cloud vmlinux (590 MB, gcc 12,
DWARF 5) and the corpus log ``console-sysrq.log`` (~70 traces, 656 frames). The peers:

* ``llvm-symbolizer --inlining`` and ``addr2line -fi`` on the unique vmlinux lookup addresses of
  the log (``lookup_address`` of every expected frame without a module);
* ``scripts/decode_stacktrace.sh`` of Debian's ``linux-source-6.1`` on the log (with the module
  folder), extracted once from ``/usr/src/linux-source-6.1.tar.xz`` with ``decodecode``;
* drgn on the same addresses, if ``import drgn`` works (``pip install drgn``; not a dependency
  of ltosyms): a Linux-kernel program over the vmlinux alone, ``Program.source_location``;
* ltosyms: ``decode`` cold (empty cache) and warm, ``symbolize`` of the same addresses, and
  ``index`` of the whole vmlinux -- each only if the installed ltosyms has that command.

Each command runs as its own process tree. Peak RSS is the largest resident set of any single
process of the tree (``wait4``) and, sampled every 20 ms, the sum of PSS over the tree (what the
machine must hold at once, e.g. ``index`` with its workers; shared pages counted once). The
short commands (peers, warm ltosyms runs) run in ``--repeat`` rounds of one run each, and each
keeps its fastest run, so that ratios compare runs made under the same machine load. ltosyms
runs as pip installs it, in a venv of the bench's own. The vmlinux is read once before
anything is timed, so every tool finds it in the page cache.

    python3 bench/bench_decode.py [--jobs N] [--repeat N] [--skip-script] [--skip-index]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("LTOSYMS_CORPUS", PROJECT.parent / "shared" / "corpus"))
DEBIAN = CORPUS / "debian-6.1.0-57-cloud-amd64"
LOG_NAME = "console-sysrq.log"
KERNEL_SOURCE = Path("/usr/src/linux-source-6.1.tar.xz")
BENCH_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ltosyms-bench"
BENCH_VENV = BENCH_CACHE / "venv"
# Replaced by install_ltosyms(): the command as a user runs it.
LTOSYMS = [sys.executable, "-m", "ltosyms"]

# Targets of the issue, as (row, reference row, highest ratio); and absolute limits.
RATIO_TARGETS = (
    ("ltosyms decode warm", "llvm-symbolizer --inlining", 1.0),
    ("ltosyms decode cold", "decode_stacktrace.sh", 0.1),
)
INDEX_SECONDS_TARGET = 600.0
RSS_TARGET_MIB = 1024.0

# A Linux-kernel drgn program over a vmlinux alone: vmcoreinfo with what drgn asks for.
DRGN_SCRIPT = r"""
import sys, time, drgn
vmlinux, release, build_id, pgd = sys.argv[1:5]
addresses = [int(line, 16) for line in sys.stdin if line.strip()]
flags = drgn.PlatformFlags.IS_64_BIT | drgn.PlatformFlags.IS_LITTLE_ENDIAN
prog = drgn.Program(drgn.Platform(drgn.Architecture.X86_64, flags))
prog.set_linux_kernel_custom(
    f"OSRELEASE={release}\nBUILD-ID={build_id}\nPAGESIZE=4096\nKERNELOFFSET=0\n"
    f"SYMBOL(swapper_pg_dir)={pgd}\n", False)
prog.load_debug_info([vmlinux])
for address in addresses:
    try:
        print(hex(address), prog.source_location(address))
    except LookupError:
        print(hex(address), "??")
"""


@dataclass(frozen=True, slots=True)
class Measurement:
    name: str
    seconds: float
    peak_rss_mib: float  # largest single process of the tree
    tree_rss_mib: float  # largest sampled sum of PSS over the tree
    exit_code: int
    output_lines: int
    note: str = ""


def run(
    name: str,
    argv: Sequence[str],
    *,
    stdin: Path | None = None,
    output: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    note: str = "",
) -> Measurement:
    """Run ``argv`` once; wall time, peak RSS (wait4 and sampled tree), output line count."""
    with (
        open(stdin or os.devnull, "rb") as source,
        open(output, "wb") as sink,
        open(output.with_suffix(".stderr"), "wb") as errors,
    ):
        started = time.perf_counter()
        process = subprocess.Popen(
            list(argv), stdin=source, stdout=sink, stderr=errors, env=env, cwd=cwd
        )
        tree_peak = 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            tree_peak = max(tree_peak, _tree_rss_kib(process.pid))
            time.sleep(0.02)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    lines = output.read_bytes().count(b"\n")
    # ru_maxrss (KiB on Linux) of the child and of the descendants it waited for: the largest.
    return Measurement(
        name,
        seconds,
        usage.ru_maxrss / 1024,
        tree_peak / 1024,
        process.returncode,
        lines,
        note,
    )


def _tree_rss_kib(root: int) -> int:
    """Memory of ``root`` and its descendants: the sum of their PSS (/proc/PID/smaps_rollup).

    PSS, not RSS: worker processes map the same vmlinux, and its page-cache pages would be
    counted once per worker in a sum of RSS."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += _pss_kib(pid)
        stack.extend(children.get(pid, ()))
    return total


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


# -- inputs -----------------------------------------------------------------------------------


def debian_vmlinux() -> Path:
    result = subprocess.run(
        ["sh", str(DEBIAN / "get-vmlinux.sh")], capture_output=True, text=True, check=True
    )
    return Path(result.stdout.strip().splitlines()[-1])


def lookup_addresses(log_name: str) -> list[str]:
    frames = json.loads((DEBIAN / "expected" / "frames.json").read_text())
    unique = {
        int(f["lookup_address"], 16) for f in frames if f["log"] == log_name and f["module"] is None
    }
    return [f"{address:#x}" for address in sorted(unique)]


def kernel_scripts() -> Path:
    """scripts/decode_stacktrace.sh and scripts/decodecode of Debian's linux-source-6.1."""
    target = BENCH_CACHE / "linux-source-6.1" / "scripts"
    wanted = ("decode_stacktrace.sh", "decodecode")
    if all((target / name).is_file() for name in wanted):
        return target
    if not KERNEL_SOURCE.is_file():
        raise SystemExit(f"{KERNEL_SOURCE} missing: apt-get install linux-source-6.1")
    target.mkdir(parents=True, exist_ok=True)
    members = {f"linux-source-6.1/scripts/{name}" for name in wanted}
    with tarfile.open(KERNEL_SOURCE) as archive:
        for member in archive:
            if member.name in members:
                extracted = archive.extractfile(member)
                assert extracted is not None
                path = target / Path(member.name).name
                path.write_bytes(extracted.read())
                path.chmod(0o755)
                members.discard(member.name)
                if not members:
                    break
    return target


def install_ltosyms() -> str:
    """Install this source tree into a venv of its own, as a user installs a release (``pip
    install``: a wheel, bytecode compiled at install time, no editable-install path hooks),
    and time that ``ltosyms`` command. Start-up is a measurable part of a warm decode, so the
    bench must not time a development checkout whose modules are compiled on every run.
    Returns how ltosyms is run; falls back on this interpreter and the source tree when pip
    cannot install (no network for the dependencies, say)."""
    global LTOSYMS  # noqa: PLW0603 (set once, before anything is timed)
    python = BENCH_VENV / "bin" / "python"
    steps = []
    if not python.exists():
        steps.append([sys.executable, "-m", "venv", str(BENCH_VENV)])
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    steps.append([*pip, str(PROJECT)])
    # The version does not change between commits: reinstall the tree as it is now.
    steps.append([*pip, "--force-reinstall", "--no-deps", str(PROJECT)])
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            print(f"  pip install failed ({result.stderr.strip()[-200:]})", file=sys.stderr)
            return f"{sys.executable} -m ltosyms (source tree; install into a venv failed)"
    LTOSYMS = [str(BENCH_VENV / "bin" / "ltosyms")]
    return f"{LTOSYMS[0]} (pip install of {PROJECT})"


def forget_answers(cache: Path) -> None:
    """Delete the per-query answers from every index in ``cache``: what a decode stores per
    address, per printed frame or per Code: line (ltosyms.index.kinds). Units, tables and
    sweeps (a function's instructions: another log hits the same functions) stay."""
    import sqlite3

    sys.path.insert(0, str(PROJECT))
    from ltosyms.index import kinds

    per_query = [
        kind.stored_name
        for kind in (
            kinds.CALL_SITES,
            kinds.CHAINS,
            kinds.CODE_ANALYSES,
            kinds.CODE_MATCHES,
            kinds.RESOLVED_FRAMES,
        )
    ]
    marks = ",".join("?" * len(per_query))
    for path in cache.glob("*.sqlite"):
        with sqlite3.connect(path) as connection:
            connection.execute(f"DELETE FROM derived WHERE kind IN ({marks})", per_query)
        connection.close()


def ltosyms_commands() -> set[str]:
    """The subcommands the installed ltosyms has."""
    result = subprocess.run(
        [*LTOSYMS, "--help"], check=True, capture_output=True, text=True, cwd=PROJECT
    )
    commands, in_commands = set(), False
    for line in result.stdout.splitlines():
        if line.strip() == "Commands:":
            in_commands = True
        elif in_commands and line.startswith("  ") and line.strip():
            commands.add(line.split()[0])
    return commands


def symbol_value(vmlinux: Path, name: str) -> str:
    result = subprocess.run(["nm", str(vmlinux)], capture_output=True, text=True, check=True)
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return parts[0]
    raise SystemExit(f"{vmlinux}: no symbol {name}")


def kernel_release(vmlinux: Path) -> str:
    """The release in the image's ``linux_banner`` ("Linux version 6.1.0-57-cloud-amd64 ...")."""
    sys.path.insert(0, str(PROJECT))
    from ltosyms.elf.build_facts import read_build_facts
    from ltosyms.elf.kernel import load_vmlinux

    loaded = load_vmlinux(vmlinux)
    banner = read_build_facts(loaded.image, loaded.symbols).banner or ""
    words = banner.split()
    return words[2] if len(words) > 2 and words[:2] == ["Linux", "version"] else "unknown"


def build_id_of(vmlinux: Path) -> str:
    result = subprocess.run(
        ["readelf", "-n", str(vmlinux)], capture_output=True, text=True, check=True
    )
    for line in result.stdout.splitlines():
        if "Build ID:" in line:
            return line.split("Build ID:")[1].strip()
    raise SystemExit(f"{vmlinux}: no build id")


# -- the run ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vmlinux", type=Path, help="default: the corpus Debian vmlinux")
    parser.add_argument("--log", default=LOG_NAME, help="a log of the Debian corpus")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="for index")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of the fast commands")
    parser.add_argument("--work", type=Path, help="keep outputs here (default: a temp dir)")
    parser.add_argument("--skip-script", action="store_true", help="no decode_stacktrace.sh")
    parser.add_argument("--skip-index", action="store_true", help="no ltosyms index")
    options = parser.parse_args()

    vmlinux = options.vmlinux or debian_vmlinux()
    log = DEBIAN / "logs" / options.log
    modules = DEBIAN / "modules"
    work = options.work or Path(tempfile.mkdtemp(prefix="ltosyms-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    addresses_file = work / "addresses.txt"
    addresses = lookup_addresses(options.log)
    addresses_file.write_text("\n".join(addresses) + "\n")
    # decode_stacktrace.sh keeps a CR in the last word of a line: module frames (`[zram]\r`)
    # are then left undecoded (measured: 546 vs 570 decoded lines on this log). It gets the
    # log with LF line ends, as a user would have it; ltosyms reads the raw capture.
    log_lf = work / "log-lf.txt"
    log_lf.write_bytes(log.read_bytes().replace(b"\r\n", b"\n"))
    print(f"ltosyms: {install_ltosyms()}", file=sys.stderr)
    commands = ltosyms_commands()
    print(f"vmlinux {vmlinux} ({vmlinux.stat().st_size / 1e6:.0f} MB)", file=sys.stderr)
    print(f"log {log.name}: {len(addresses)} unique vmlinux lookup addresses", file=sys.stderr)
    print(f"ltosyms commands: {', '.join(sorted(commands))}", file=sys.stderr)

    # Page cache: every tool reads the vmlinux from memory, as the second run of a user would.
    subprocess.run(["cat", str(vmlinux)], stdout=subprocess.DEVNULL, check=True)

    results: list[Measurement] = []

    def record(measurement: Measurement) -> None:
        results.append(measurement)
        print(
            f"  {measurement.name}: {measurement.seconds:.3f} s, "
            f"{measurement.peak_rss_mib:.0f} MiB, exit {measurement.exit_code}",
            file=sys.stderr,
        )

    def out(name: str) -> Path:
        return work / (name.replace(" ", "_").replace("/", "_") + ".out")

    # Short commands run in rounds, one of each per round, and each keeps its fastest run:
    # load on a shared machine drifts, and a peer timed minutes before ltosyms would see
    # another machine. Cold runs (each needs an empty index) come first.
    fast: list[tuple[str, Callable[[], Measurement]]] = []
    peers = [
        ("llvm-symbolizer --inlining", ["llvm-symbolizer", "--inlining", "--obj", str(vmlinux)]),
        ("addr2line -fi", ["addr2line", "-fi", "-e", str(vmlinux)]),
    ]
    for name, argv in peers:
        if shutil.which(argv[0]) is None:
            print(f"  {name}: not installed, skipped", file=sys.stderr)
            continue
        fast.append((name, partial(run, name, argv, stdin=addresses_file, output=out(name))))

    try:
        import drgn  # noqa: F401

        has_drgn = True
    except ImportError:
        has_drgn = False
        print("  drgn: not importable (pip install drgn), skipped", file=sys.stderr)
    if has_drgn:
        script = work / "drgn_symbolize.py"
        script.write_text(DRGN_SCRIPT)
        drgn_argv = [
            sys.executable,
            str(script),
            str(vmlinux),
            kernel_release(vmlinux),
            build_id_of(vmlinux),
            # x86-64: swapper_pg_dir is init_top_pgt (arch/x86/include/asm/pgtable_64.h).
            symbol_value(vmlinux, "init_top_pgt"),
        ]
        fast.append(
            (
                "drgn source_location",
                partial(
                    run,
                    "drgn source_location",
                    drgn_argv,
                    stdin=addresses_file,
                    output=out("drgn"),
                ),
            )
        )

    if "decode" in commands:

        def decode(name: str, cache: Path) -> Measurement:
            return run(
                name,
                [
                    *LTOSYMS,
                    "decode",
                    str(vmlinux),
                    str(log),
                    "--modules",
                    str(modules),
                    "--cache-dir",
                    str(cache),
                ],
                output=out(name),
                cwd=PROJECT,
            )

        caches = [work / f"cache-cold-{i}" for i in range(options.repeat)]
        for cache in caches:
            shutil.rmtree(cache, ignore_errors=True)
        record(min((decode("ltosyms decode cold", c) for c in caches), key=lambda m: m.seconds))
        fast.append(("ltosyms decode warm", partial(decode, "ltosyms decode warm", caches[0])))

        # The same log against an index that holds the units, tables, facts and function
        # sweeps but none of the answers a decode stores per address (call sites, inline
        # chains, Code: analyses): about what a warm decode of *another* log over the same
        # units and functions costs (its Code: lines would be new too).
        def units_only() -> Measurement:
            cache = work / "cache-units-only"
            shutil.rmtree(cache, ignore_errors=True)
            shutil.copytree(caches[0], cache)
            forget_answers(cache)
            return decode("ltosyms decode warm, units only", cache)

        fast.append(("ltosyms decode warm, units only", units_only))
    else:
        print("  ltosyms decode: no such command yet, skipped", file=sys.stderr)

    if "symbolize" in commands:

        def symbolize(name: str, cache: Path) -> Measurement:
            return run(
                name,
                [*LTOSYMS, "symbolize", str(vmlinux), "--cache-dir", str(cache)],
                stdin=addresses_file,
                output=out(name),
                cwd=PROJECT,
            )

        cold = work / "cache-symbolize"
        shutil.rmtree(cold, ignore_errors=True)
        record(symbolize("ltosyms symbolize cold", cold))
        fast.append(("ltosyms symbolize warm", partial(symbolize, "ltosyms symbolize warm", cold)))
    else:
        print("  ltosyms symbolize: no such command yet, skipped", file=sys.stderr)

    runs: dict[str, list[Measurement]] = {name: [] for name, _measure in fast}
    for _round in range(options.repeat):
        for name, measure in fast:
            runs[name].append(measure())
    for name, _measure in fast:
        record(min(runs[name], key=lambda m: m.seconds))

    if not options.skip_script:
        scripts = kernel_scripts()
        record(
            run(
                "decode_stacktrace.sh",
                ["bash", str(scripts / "decode_stacktrace.sh"), str(vmlinux), "", str(modules)],
                stdin=log_lf,
                output=out("decode_stacktrace"),
                note="log with LF line ends",
            )
        )

    if "index" in commands and not options.skip_index:
        cache = work / "cache-index"
        shutil.rmtree(cache, ignore_errors=True)
        record(
            run(
                f"ltosyms index --jobs {options.jobs}",
                [
                    *LTOSYMS,
                    "index",
                    str(vmlinux),
                    "--jobs",
                    str(options.jobs),
                    "--cache-dir",
                    str(cache),
                ],
                output=out("index"),
                cwd=PROJECT,
            )
        )
        index_size = sum(p.stat().st_size for p in cache.iterdir() if p.is_file())
        print(f"  index size: {index_size / 1e6:.1f} MB", file=sys.stderr)

    print_table(results)
    print(f"\noutputs: {work}")
    return 0


# Table rows: the peers, then ltosyms from cold to warm (commands missing here come last).
ROW_ORDER = (
    "llvm-symbolizer --inlining",
    "addr2line -fi",
    "drgn source_location",
    "ltosyms decode cold",
    "ltosyms decode warm",
    "ltosyms decode warm, units only",
    "ltosyms symbolize cold",
    "ltosyms symbolize warm",
    "decode_stacktrace.sh",
)


def print_table(results: list[Measurement]) -> None:
    results = sorted(
        results,
        key=lambda m: ROW_ORDER.index(m.name) if m.name in ROW_ORDER else len(ROW_ORDER),
    )
    by_name = {m.name: m for m in results}
    llvm = by_name.get("llvm-symbolizer --inlining")
    script = by_name.get("decode_stacktrace.sh")
    print()
    print(
        f"{'command':34} {'seconds':>9} {'x llvm':>8} {'x script':>9} "
        f"{'RSS MiB':>8} {'tree PSS':>9} {'exit':>5} {'lines':>6}"
    )
    for m in results:
        ratio_llvm = f"{m.seconds / llvm.seconds:.2f}" if llvm else "-"
        ratio_script = f"{m.seconds / script.seconds:.3f}" if script else "-"
        print(
            f"{m.name:34} {m.seconds:9.3f} {ratio_llvm:>8} {ratio_script:>9} "
            f"{m.peak_rss_mib:8.0f} {m.tree_rss_mib:9.0f} {m.exit_code:5d} {m.output_lines:6d}"
            + (f"  ({m.note})" if m.note else "")
        )
    print()
    for row, reference, limit in RATIO_TARGETS:
        if row in by_name and reference in by_name:
            ratio = by_name[row].seconds / by_name[reference].seconds
            verdict = "met" if ratio <= limit else f"MISSED by {ratio / limit - 1:.0%}"
            print(f"target {row} <= {limit}x {reference}: {ratio:.3f}x, {verdict}")
    for m in results:
        if m.name.startswith("ltosyms index"):
            verdict = "met" if m.seconds <= INDEX_SECONDS_TARGET else "MISSED"
            print(f"target {m.name} <= {INDEX_SECONDS_TARGET:.0f} s: {m.seconds:.1f} s, {verdict}")
    for label, value in (("RSS of one process", "peak_rss_mib"), ("PSS of a tree", "tree_rss_mib")):
        worst = max(results, key=lambda m: float(getattr(m, value)), default=None)
        if worst is not None:
            peak = float(getattr(worst, value))
            verdict = "met" if peak <= RSS_TARGET_MIB else "MISSED"
            print(
                f"target peak {label} <= {RSS_TARGET_MIB:.0f} MiB: largest {peak:.0f} MiB "
                f"({worst.name}), {verdict}"
            )


if __name__ == "__main__":
    sys.exit(main())
