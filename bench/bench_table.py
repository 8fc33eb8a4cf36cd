#!/usr/bin/env python3
"""Time the address table (issue 15) against llvm-symbolizer, in one run, and print ratios.

The image: the Debian 6.1 cloud vmlinux (590 MB, gcc 12, DWARF 5), or a corpus kernel
(``--kernel clang-thinlto``). The addresses: the return address of every call instruction in
``.text`` (a capstone sweep; 218,314 on Debian), and 2,000 of them drawn with a fixed seed.

Rows, each command a fresh process (import, open, answer):

* build: ``ltosyms index --jobs N`` (units, symbol table and the address table), and the
  table alone: the image's units parsed by N worker processes (each unit's chain map with
  it), handed to an ``AddressTableBuilder`` as they come back, written; its size, the time to
  open it (checksum and shape checks) and the checksum alone;
* lookups, on the 2,000 and on all addresses:
  - ``llvm-symbolizer --inlining`` at each return address - 1;
  - ``ltosyms table (chains)``: the library with the table: at each return address - 1 the
    inline chain (outermost entry named from the ELF symbols, as llvm-symbolizer names it),
    printed one line per entry as ``symbolize`` prints locations;
  - ``ltosyms table (symbolize text)``: the library path ``symbolize -R`` takes (the decoder:
    symbol, call instruction ending at the return address, chain at the call, notes), the
    vmlinux resolver answering from the index's table, printing what ``symbolize`` prints.
    Its output is compared with the command's on the 2,000;
  - ``ltosyms symbolize -R`` after ``ltosyms index``, on the 2,000 only (bench_symbolize.py
    has the issue's rows through the installed command);
* the fixed cost of the command over the library path: one address through each.

Every ltosyms run starts from a copy of the index as ``ltosyms index`` left it: no run finds
answers an earlier one stored. Runs of a round are interleaved with the peer's and each row
keeps its median over ``--repeat`` rounds (the machine is shared: ratios, not seconds, are the
result). Peak RSS is the largest resident set of one process (``wait4``); "first out" is when
the first bytes of output arrived (output to a pipe is block-buffered, by llvm-symbolizer too).
ltosyms runs with the interpreter that runs this script.

    python3 bench/bench_table.py [--kernel debian|VARIANT] [--repeat N] [--jobs N]
                                 [--skip-bulk-symbolize]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("LTOSYMS_CORPUS", PROJECT.parent / "shared" / "corpus"))
BENCH_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ltosyms-bench"
SAMPLE_SIZE = 2000
SEED = 15
LLVM = "llvm-symbolizer --inlining"

# Targets of issue 15, as (row, highest ratio to llvm-symbolizer) per address set.
TARGETS = {"2,000": 0.5, "all": 1.0}
RSS_TARGET_MIB = 1024.0

# What each ltosyms row runs, in a fresh interpreter: ``python -c CHILD MODE ARGS...``. It
# prints its own phase times as one JSON line on stderr.
CHILD = r"""
import json, mmap, sys, time
started = time.perf_counter()


def open_table(path, key):
    from ltosyms.dwarf import AddressTable

    with open(path, "rb") as file:
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    return AddressTable.from_buffer(mapped, key)


_parser = None


def start_worker(vmlinux):
    global _parser
    from ltosyms.dwarf import UnitParser
    from ltosyms.elf.debug_sections import dwarf_sections
    from ltosyms.elf.image import open_image

    _parser = UnitParser(dwarf_sections(open_image(vmlinux)))


def parse(cu_offset):
    # What an index worker would hand back: the unit's record and its chain map, worked out
    # here, next to the parse, rather than in the one process that collects them.
    from ltosyms.dwarf import chain_map

    data = _parser.unit(cu_offset)
    return data, chain_map(data)


def build(vmlinux, out, jobs):
    import multiprocessing, os
    from concurrent.futures import ProcessPoolExecutor
    from ltosyms.dwarf import AddressTableBuilder, UnitParser
    from ltosyms.elf.debug_sections import dwarf_sections
    from ltosyms.elf.image import open_image

    image = open_image(vmlinux)
    cu_map = UnitParser(dwarf_sections(image)).unit_map()
    offsets = cu_map.unit_offsets()
    info_size = image.get_section(".debug_info").size
    sizes = {a: b - a for a, b in zip(offsets, [*offsets[1:], info_size])}
    mapped = time.perf_counter()
    builder = AddressTableBuilder(image.build_id or "")
    added = 0.0
    # Biggest units first, as ltosyms index sends them: no worker is left with one at the end.
    with ProcessPoolExecutor(
        jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=start_worker,
        initargs=(vmlinux,),
    ) as pool:
        for data, chains in pool.map(parse, sorted(offsets, key=lambda o: -sizes[o]), chunksize=4):
            before = time.perf_counter()
            builder.add(data, chains)
            added += time.perf_counter() - before
    parsed = time.perf_counter()
    data = builder.table(cu_map).to_bytes()
    with open(out + ".tmp", "wb") as file:
        file.write(data)
    os.replace(out + ".tmp", out)
    done = time.perf_counter()
    return {"map": mapped - started, "parse": parsed - mapped, "add": added,
            "assemble": done - parsed, "bytes": len(data), "units": len(offsets)}


def open_only(table_path):
    import zlib
    from ltosyms.dwarf import AddressTable  # the modules a decode with a table imports

    imported = time.perf_counter()
    table = open_table(table_path, None)
    opened = time.perf_counter()
    with open(table_path, "rb") as file:
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    before = time.perf_counter()
    zlib.crc32(memoryview(mapped)[16:])
    checksum = time.perf_counter() - before
    return {"import": imported - started, "open": opened - imported, "crc": checksum,
            "units": table.unit_count}


def chains(vmlinux, table_path, cache):
    # The image's context itself, not the commands: importing the CLI and the decoder costs
    # ~150 ms that a lookup of chains does not need.
    from ltosyms.context import ImageContext
    from ltosyms.elf.outer_names import outer_namer
    from ltosyms.index import cache_location, kinds

    with ImageContext.open(vmlinux, cache=cache_location(cache)) as context:
        table = open_table(table_path, context.build_id)
        outer = outer_namer(context.symbols, context.memo(kinds.OUTER_NAMES))
        ready = time.perf_counter()
        # Written in blocks of answers: one write per line costs as much as a lookup.
        block = []
        add = block.append
        for count, line in enumerate(sys.stdin, start=1):
            add(line)
            for location in table.locations(int(line, 16) - 1, outer):
                where = "??"
                if location.file is not None:
                    where = f"{location.file}:{location.line or '?'}"
                    if location.line and location.column:
                        where += f":{location.column}"
                marker = " (inlined)" if location.inlined else ""
                add(f"    {where}  {location.function or '??'}{marker}\n")
            if not count % 1024:
                sys.stdout.write("".join(block))
                block.clear()
        sys.stdout.write("".join(block))
    return {"ready": ready - started}


def symbolize_text(vmlinux, table_path, cache):
    # What `symbolize -R` runs, without the CLI: the index (written by `ltosyms index`) holds
    # the address table the vmlinux resolver answers from.
    from ltosyms import Decoder, ModuleSet, Session, cache_location
    from ltosyms.decode.symbolize import parse_query, symbolize
    from ltosyms.oops.records import FrameRole
    from ltosyms.render.symbolize import symbolized_lines

    with Session(cache_location(cache)) as session:
        decoder = Decoder(session.open_vmlinux(vmlinux), ModuleSet())
        ready = time.perf_counter()
        write = sys.stdout.write
        for line in sys.stdin:
            result = symbolize(decoder, parse_query(line, FrameRole.RETURN_ADDRESS))
            write("".join(text + "\n" for text in symbolized_lines(result)))
    return {"ready": ready - started}


if __name__ == "__main__":  # not in the build's spawned workers, which import this file
    mode, *arguments = sys.argv[1:]
    phases = {"build": build, "open": open_only, "chains": chains, "symbolize": symbolize_text}
    if mode == "build":
        arguments[2] = int(arguments[2])
    result = phases[mode](*arguments)
    sys.stdout.flush()
    print(json.dumps(result), file=sys.stderr)
"""


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    peak_rss_mib: float
    first_output: float | None  # seconds until the first bytes of output
    exit_code: int
    output: bytes
    phases: dict[str, float]


def run(argv: Sequence[str], stdin: bytes = b"") -> Run:
    """Run ``argv`` once, feeding ``stdin``; wall time, peak RSS, output, phases (JSON on the
    last stderr line of our children)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    chunks: list[bytes] = []
    first: list[float] = []
    errors: list[bytes] = []

    def feed() -> None:
        assert process.stdin is not None
        try:
            process.stdin.write(stdin)
            process.stdin.close()
        except BrokenPipeError:
            pass

    def drain() -> None:
        assert process.stdout is not None
        while chunk := process.stdout.read1(1 << 16):
            if not first:
                first.append(time.perf_counter() - started)
            chunks.append(chunk)

    def drain_errors() -> None:
        assert process.stderr is not None
        errors.append(process.stderr.read())

    threads = [threading.Thread(target=t) for t in (feed, drain, drain_errors)]
    for thread in threads:
        thread.start()
    peak_kib = 0
    while True:
        pid, status = os.waitpid(process.pid, os.WNOHANG)
        if pid:
            break
        peak_kib = max(peak_kib, _tree_peak_kib(process.pid))
        time.sleep(0.01)
    seconds = time.perf_counter() - started
    for thread in threads:
        thread.join()
    exit_code = os.waitstatus_to_exitcode(status)
    stderr = b"".join(errors).decode(errors="replace").strip()
    phases: dict[str, float] = {}
    if stderr:
        try:
            phases = json.loads(stderr.splitlines()[-1])
        except ValueError:
            phases = {}
    if exit_code != 0:
        raise SystemExit(f"{' '.join(map(str, argv[:4]))}... exit {exit_code}:\n{stderr[-2000:]}")
    return Run(
        seconds, peak_kib / 1024, first[0] if first else None, exit_code, b"".join(chunks), phases
    )


def _tree_peak_kib(root: int) -> int:
    """The largest high-water resident set (VmHWM) of ``root`` and its descendants so far.

    Sampled from /proc, not taken from wait4: Linux keeps a process's largest resident set
    across fork and exec, so ``ru_maxrss`` of a child would count this script's own memory."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    peak, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, ()))
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except (OSError, ValueError):
            continue
    return peak


# -- inputs -------------------------------------------------------------------------------------


def vmlinux_path(kernel: str) -> Path:
    script = (
        CORPUS / "debian-6.1.0-57-cloud-amd64" / "get-vmlinux.sh"
        if kernel == "debian"
        else CORPUS / "kernels" / "get-vmlinux.sh"
    )
    argv = ["sh", str(script)] + ([] if kernel == "debian" else [kernel])
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    return Path(result.stdout.strip().splitlines()[-1])


def call_return_addresses(vmlinux: Path, work: Path) -> list[int]:
    """The address after every call instruction of ``.text``: a linear capstone sweep, which
    restarts a byte further on where a byte does not decode (kept in ``work``)."""
    sys.path.insert(0, str(PROJECT))
    import capstone

    from ltosyms.elf.image import open_image

    with open_image(vmlinux) as image:
        kept = work / f"returns-{image.build_id}.txt"
        if kept.is_file():
            return [int(line, 16) for line in kept.read_text().split()]
        text = image.get_section(".text")
        if text is None:
            raise SystemExit(f"{vmlinux}: no .text")
        code = image.section_bytes(text)
        arm64 = image.machine == "aarch64"
    disassembler = (
        capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
        if arm64
        else capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    )
    found: list[int] = []
    position = 0
    while position < len(code):
        reached = position
        for address, size, mnemonic, _operands in disassembler.disasm_lite(
            code[position:], text.link_address + position
        ):
            if mnemonic.startswith("call") or mnemonic in ("bl", "blr"):
                found.append(address + size)
            reached = address + size - text.link_address
        position = reached if reached > position else position + 1
    kept.write_text("".join(f"{address:x}\n" for address in found))
    return found


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    addresses: str  # "2,000", "all", "1", or "" for build rows
    runs: list[Run]

    def median(self, field: str) -> float:
        values = [getattr(r, field) for r in self.runs if getattr(r, field) is not None]
        return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", default="debian", help="debian or a corpus kernel variant")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each short row")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes of the builds")
    parser.add_argument(
        "--skip-bulk-symbolize",
        action="store_true",
        help="leave out the symbolize-text path on every address (about a minute)",
    )
    options = parser.parse_args()
    if shutil.which("llvm-symbolizer") is None:
        raise SystemExit("llvm-symbolizer not found: it is the peer of every row")
    work = BENCH_CACHE / "table"
    work.mkdir(parents=True, exist_ok=True)
    vmlinux = vmlinux_path(options.kernel)
    with open(vmlinux, "rb") as file:  # into the page cache, before anything is timed
        while file.read(1 << 24):
            pass
    # A file, not ``-c``: the build's spawned workers import the functions they run from it.
    child = work / "bench_table_child.py"
    child.write_text(CHILD)
    python = [sys.executable, str(child)]
    returns = call_return_addresses(vmlinux, work)
    chosen = random.Random(SEED).sample(returns, min(SAMPLE_SIZE, len(returns)))
    sets = {"2,000": chosen, "all": returns}
    print(f"{vmlinux}: {len(returns):,} call return addresses in .text", file=sys.stderr)

    # Build: the index (also what the lookup rows read their symbol table from), the table.
    pristine = work / "index"
    shutil.rmtree(pristine, ignore_errors=True)
    index = run(
        [
            sys.executable,
            "-m",
            "ltosyms",
            "index",
            "--jobs",
            str(options.jobs),
            "--cache-dir",
            str(pristine),
            str(vmlinux),
        ]
    )
    index_bytes = sum(p.stat().st_size for p in pristine.iterdir() if p.is_file())
    table_path = work / f"address-{options.kernel}.table"
    build = run([*python, "build", str(vmlinux), str(table_path), str(options.jobs)])
    opens = [run([*python, "open", str(table_path)]) for _ in range(options.repeat)]

    rows: list[Row] = []
    scratch = work / "scratch-index"

    def fresh_index() -> str:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.copytree(pristine, scratch)
        return str(scratch)

    def llvm(addresses: list[int]) -> Run:
        text = "".join(f"{a - 1:#x}\n" for a in addresses).encode()
        return run([*LLVM.split(), "--obj", str(vmlinux)], text)

    def ours(mode: str, addresses: list[int]) -> Run:
        text = "".join(f"{a:x}\n" for a in addresses).encode()
        return run([*python, mode, str(vmlinux), str(table_path), fresh_index()], text)

    def today(addresses: list[int]) -> Run:
        text = "".join(f"{a:x}\n" for a in addresses).encode()
        argv = [sys.executable, "-m", "ltosyms", "symbolize", "-R", "--cache-dir"]
        return run([*argv, fresh_index(), str(vmlinux)], text)

    for label, addresses in sets.items():
        measured = {
            LLVM: lambda a=addresses: llvm(a),
            "ltosyms table (chains)": lambda a=addresses: ours("chains", a),
        }
        if label == "2,000" or not options.skip_bulk_symbolize:
            measured["ltosyms table (symbolize text)"] = lambda a=addresses: ours("symbolize", a)
        if label == "2,000":
            measured["ltosyms symbolize -R (index)"] = lambda a=addresses: today(a)
        found = {name: Row(name, label, []) for name in measured}
        slow = ("ltosyms table (symbolize text)", "ltosyms symbolize -R (index)")
        for round_number in range(options.repeat):
            for name, measure in measured.items():
                if label == "all" and name in slow and round_number:
                    continue  # a minute or more each: once
                print(f"  {label}: {name} (round {round_number + 1})", file=sys.stderr)
                found[name].runs.append(measure())
        rows.extend(found.values())
        if label == "2,000":
            table_text = found["ltosyms table (symbolize text)"].runs[0].output
            today_text = found["ltosyms symbolize -R (index)"].runs[0].output
            same = "identical" if table_text == today_text else "DIFFERENT"
            lines = table_text.count(b"\n")
            print(f"symbolize text of the 2,000, library vs the command: {same} ({lines:,} lines)")
    one = [chosen[0]]
    rows.append(Row("ltosyms table (symbolize text)", "1", [ours("symbolize", one)]))
    rows.append(Row("ltosyms symbolize -R (index)", "1", [today(one)]))

    print_build(index, index_bytes, build, opens)
    print_lookups(rows)
    return 0


def print_build(index: Run, index_bytes: int, build: Run, opens: list[Run]) -> None:
    phases = build.phases
    print()
    print("| build | seconds | peak RSS MiB (one process) | size MB |")
    print("|---|---:|---:|---:|")
    print(
        f"| `ltosyms index --jobs N` (units, symbols, address table) | {index.seconds:.1f} | "
        f"{index.peak_rss_mib:.0f} | {index_bytes / 1e6:.1f} |"
    )
    print(
        f"| table: map + {phases.get('units', 0):,} units parsed by N workers + assembled | "
        f"{build.seconds:.1f} | {build.peak_rss_mib:.0f} | {phases.get('bytes', 0) / 1e6:.1f} |"
    )
    print(
        f"| of which: unit map {phases.get('map', 0):.1f} s, parse {phases.get('parse', 0):.1f} s"
        f" (adding units {phases.get('add', 0):.2f} s), assemble+write "
        f"{phases.get('assemble', 0):.2f} s | | | |"
    )
    opened = statistics.median(r.phases.get("open", 0) for r in opens)
    crc = statistics.median(r.phases.get("crc", 0) for r in opens)
    imported = statistics.median(r.phases.get("import", 0) for r in opens)
    process = statistics.median(r.seconds for r in opens)
    print(
        f"| open: `AddressTable.from_buffer` on the map (checksum + shape) {opened * 1000:.1f} ms,"
        f" of which CRC-32 {crc * 1000:.1f} ms; interpreter start and imports "
        f"{imported * 1000:.0f} ms; whole process {process * 1000:.0f} ms | | | |"
    )


def print_lookups(rows: list[Row]) -> None:
    print()
    print("| addresses | command | seconds (median) | runs | first out s | peak RSS MiB | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    llvm = {row.addresses: row.median("seconds") for row in rows if row.name == LLVM}
    misses = []
    for row in rows:
        seconds = row.median("seconds")
        reference = llvm.get(row.addresses)
        ratio = f"{seconds / reference:.2f}x" if reference else ""
        target = TARGETS.get(row.addresses)
        if (
            reference
            and target
            and row.name.startswith("ltosyms table")
            and seconds > target * reference
        ):
            misses.append(f"{row.name} on {row.addresses}: {seconds / reference:.2f}x > {target}x")
        rss = row.median("peak_rss_mib")
        if rss > RSS_TARGET_MIB:
            misses.append(f"{row.name} on {row.addresses}: {rss:.0f} MiB > {RSS_TARGET_MIB:.0f}")
        print(
            f"| {row.addresses} | {row.name} | {seconds:.2f} | {len(row.runs)} | "
            f"{row.median('first_output'):.2f} | {rss:.0f} | {ratio} |"
        )
    single = {row.name: row.median("seconds") for row in rows if row.addresses == "1"}
    if len(single) == 2:
        library, command = single.values()
        print(f"| 1 | the command minus the library path | {command - library:+.2f} | | | | |")
    print()
    print("targets (issue 15): 2,000 <= 0.5x, all <= 1.0x llvm-symbolizer, peak RSS <= 1 GiB")
    print("missed: " + ("; ".join(misses) if misses else "none"))


if __name__ == "__main__":
    sys.exit(main())
