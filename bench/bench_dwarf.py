#!/usr/bin/env python3
"""Micro-benchmark of the DWARF resolver on a real kernel, against pyelftools and the peers.

Measures, on the unique vmlinux lookup addresses of one corpus log (default: the Debian
``console-sysrq.log``, 114 addresses):

- cold: a fresh process, an empty index, resolves every address (units parsed, CPU and wall
  time, peak RSS);
- warm: a fresh process reading the units the cold run stored in its index;
- llvm-symbolizer --inlining and addr2line -fi on the same addresses, when installed;
- per unit, for the largest units touched: line program and DIE walk, ltosyms vs pyelftools
  (pyelftools' time over ours: per part and for the unit).

    python bench/bench_dwarf.py [--vmlinux PATH] [--frames FRAMES.json] [--log NAME]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
CORPUS = Path(os.environ.get("LTOSYMS_CORPUS", PROJECT.parent / "shared" / "corpus"))
DEBIAN = CORPUS / "debian-6.1.0-57-cloud-amd64"


def debian_vmlinux() -> Path:
    result = subprocess.run(
        ["sh", str(DEBIAN / "get-vmlinux.sh")], capture_output=True, text=True, check=True
    )
    return Path(result.stdout.strip().splitlines()[-1])


def lookup_addresses(frames: Path, log: str | None) -> list[int]:
    records = json.loads(frames.read_text())
    return sorted(
        {
            int(r["lookup_address"], 16)
            for r in records
            if not r["module"] and (log is None or r.get("log") == log)
        }
    )


# -- the measured runs, each in a fresh interpreter ------------------------------------------

RUN = r"""
import resource, sys, time
wall, cpu = time.perf_counter(), time.process_time()
sys.path.insert(0, {project!r})
from ltosyms.elf.debug_sections import dwarf_resolver
from ltosyms.elf.image import open_image
from ltosyms.index import Answers, CacheLocation, kinds, open_store
addresses = {addresses!r}
started_wall, started_cpu = time.perf_counter(), time.process_time()
image = open_image({vmlinux!r})
store = open_store(image, CacheLocation({cache!r}), cu_format=kinds.UNIT_FORMAT)
answers = Answers(store, image)
resolver = dwarf_resolver(
    image, units=answers.memo(kinds.UNITS), unit_map=answers.memo(kinds.UNIT_MAP)
)
found = resolver.locations_many(addresses)
done_wall, done_cpu = time.perf_counter(), time.process_time()
answers.close()  # the cold run writes its units here, after the time is taken
print(repr(dict(
    wall=done_wall - started_wall, cpu=done_cpu - started_cpu,
    process_wall=done_wall - wall, process_cpu=done_cpu - cpu,
    parsed=resolver.parsed_units, loaded=resolver.loaded_units,
    chains=sum(1 for chain in found.values() if chain),
    stored=store.size_bytes(),
    rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
)))
"""


def run(vmlinux: Path, addresses: list[int], cache: str) -> dict[str, float]:
    code = RUN.format(
        project=str(PROJECT),
        addresses=addresses,
        cache=cache,
        vmlinux=str(vmlinux),
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, float] = ast.literal_eval(output.strip().splitlines()[-1])
    return result


def peer(command: list[str], addresses: list[int]) -> tuple[float, float] | None:
    if shutil.which(command[0]) is None:
        return None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        command,
        input="\n".join(hex(a) for a in addresses) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_maxrss / 1024 if after.ru_maxrss != before.ru_maxrss else 0.0


# -- per-unit comparison with pyelftools ------------------------------------------------------


def per_unit(vmlinux: Path, addresses: list[int], count: int) -> list[tuple[str, ...]]:
    from ltosyms.dwarf import forms as dwarf_forms
    from ltosyms.dwarf.line import read_line_table
    from ltosyms.dwarf.walk import walk_dies
    from ltosyms.elf.debug_sections import dwarf_resolver
    from ltosyms.elf.image import open_image

    image = open_image(vmlinux)
    resolver = dwarf_resolver(image)
    reader = resolver.parser.reader
    units = sorted({u for a in addresses if (u := resolver.cu_for(a)) is not None})
    sized = sorted(units, key=lambda u: reader.header(u).end - u, reverse=True)[:count]
    # pyelftools is a test dependency (pip install -e '.[test]'), the peer measured here.
    from elftools.elf.elffile import ELFFile

    stream = open(vmlinux, "rb")  # noqa: SIM115  # read lazily while the units are compared
    dwarf = ELFFile(stream).get_dwarf_info(relocate_dwarf_sections=False)
    rows: list[tuple[str, ...]] = []
    for unit_offset in sized:
        header = reader.header(unit_offset)
        data = reader.unit_bytes(unit_offset)
        unit = reader.unit(unit_offset, data)
        name = unit.top_string(dwarf_forms.AT_NAME) or "?"
        started = time.process_time()
        table = read_line_table(
            reader.sections,
            unit.top[dwarf_forms.AT_STMT_LIST][1],
            unit,
            unit.top_string(dwarf_forms.AT_COMP_DIR),
            header.address_size,
        )
        ours_line = time.process_time() - started
        started = time.process_time()
        functions = walk_dies(unit, data, unit.abbrevs)
        ours_walk = time.process_time() - started
        started = time.process_time()
        theirs_unit = dwarf.get_CU_at(unit_offset)
        entries = dwarf.line_program_for_CU(theirs_unit).get_entries()
        theirs_line = time.process_time() - started
        started = time.process_time()
        dies = sum(1 for _ in theirs_unit.iter_DIEs())
        theirs_walk = time.process_time() - started
        rows.append(
            (
                name,
                f"{(header.end - unit_offset) / 1024:.0f} KB",
                f"{ours_line * 1000:.1f}",
                f"{theirs_line * 1000:.0f}",
                f"{theirs_line / ours_line:.0f}x",
                f"{len(table.rows.addresses)}/{len(entries)}",
                f"{ours_walk * 1000:.1f}",
                f"{theirs_walk * 1000:.0f}",
                f"{theirs_walk / ours_walk:.0f}x",
                f"{len(functions.values)}/{dies}",
                f"{(theirs_line + theirs_walk) / (ours_line + ours_walk):.0f}x",
            )
        )
    return rows


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vmlinux", type=Path)
    parser.add_argument("--frames", type=Path, default=DEBIAN / "expected" / "frames.json")
    parser.add_argument("--log", default="console-sysrq.log")
    parser.add_argument("--units", type=int, default=8, help="units to compare with pyelftools")
    args = parser.parse_args()
    vmlinux = args.vmlinux or debian_vmlinux()
    addresses = lookup_addresses(args.frames, args.log or None)
    print(f"{vmlinux}: {len(addresses)} unique lookup addresses")
    with tempfile.TemporaryDirectory() as scratch:
        cold = run(vmlinux, addresses, scratch)  # an empty index: every unit parsed
        warm = run(vmlinux, addresses, scratch)  # the units the cold run stored
    rows = [
        (
            mode,
            f"{result['wall']:.3f}",
            f"{result['cpu']:.3f}",
            f"{result['process_wall']:.3f}",
            f"{int(result['parsed'])}/{int(result['loaded'])}",
            f"{int(result['chains'])}",
            f"{result['rss'] / 1024:.0f} MB",
        )
        for mode, result in (("cold", cold), ("warm", warm))
    ]
    for name, command in (
        ("llvm-symbolizer", ["llvm-symbolizer", "--inlining", f"--obj={vmlinux}"]),
        ("addr2line -fi", ["addr2line", "-f", "-i", "-e", str(vmlinux)]),
    ):
        measured = peer(command, addresses)
        if measured is not None:
            rows.append((name, f"{measured[0]:.3f}", "", "", "", "", f"{measured[1]:.0f} MB"))
    print(
        table(
            rows,
            ("run", "resolve s", "cpu s", "process s", "parsed/loaded", "chains", "peak RSS"),
        )
    )
    print(f"index size after the cold run: {int(cold['stored']):,} bytes")
    print()
    print(
        table(
            per_unit(vmlinux, addresses, args.units),
            (
                "unit",
                "size",
                "lines ms",
                "pyelftools",
                "ratio",
                "rows",
                "DIEs ms",
                "pyelftools",
                "ratio",
                "functions/DIEs",
                "unit ratio",
            ),
        )
    )


if __name__ == "__main__":
    main()
