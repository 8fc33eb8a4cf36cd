#!/usr/bin/env python3
"""The largest real values behind the bounds of ``ltosyms/limits.py``, measured on the corpus.

For every corpus image (the seven vmlinux files, their modules, the sample images): symbol
count, ``.strtab`` size, the longest symbol name and how many name bytes the table yields per
``.strtab`` byte (names may share bytes), the largest DWARF section and how far zlib shrinks
each DWARF section (the ratio a SHF_COMPRESSED section or a compressed image would show), and
the image size. For every corpus log (console captures and the syzkaller reports): the longest
line, and the largest report the parser finds in lines, bytes and frames.

    python3 tools/limits_census.py            # about two minutes
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "tests"))

from conftest import SAMPLES, Corpus, _corpus_root  # noqa: E402

from ltosyms.elf.image import open_image  # noqa: E402
from ltosyms.oops.parse import iter_reports  # noqa: E402

KERNELS = (
    "clang-thinlto",
    "clang-nolto",
    "gcc-nolto",
    "arm64-clang-thinlto",
    "clang-thinlto-6.12",
    "gcc-lto",
)


def images(corpus: Corpus) -> list[Path]:
    found = [corpus.kernel_vmlinux(variant) for variant in KERNELS]
    found.append(corpus.debian_vmlinux())
    found += sorted(corpus.root.rglob("*.ko"))
    found += sorted(p for p in SAMPLES.iterdir() if p.name.startswith(("vmlinux-", "sample_")))
    return found


def image_facts(path: Path) -> dict[str, float]:
    with open_image(path) as image:
        data = image.data
        symtab = image.get_section(".symtab")
        assert symtab is not None
        strtab = image.sections[symtab.link]
        strings = image.section_bytes(strtab)
        raw = image.section_bytes(symtab)
        longest = total = 0
        for (name_at,) in struct.iter_unpack("<I20x", raw):
            length = strings.find(b"\0", name_at) - name_at
            longest = max(longest, length)
            total += length
        debug = [s for s in image.sections if s.name.startswith(".debug_") and s.size]
        largest = max(debug, key=lambda s: s.size, default=None)
        best_ratio = 0.0
        for section in debug:
            if section.size < 4096:
                continue  # headers dominate tiny sections; nothing to bound there
            contents = bytes(data[section.file_offset : section.file_offset + section.size])
            best_ratio = max(best_ratio, len(contents) / len(zlib.compress(contents, 9)))
        return {
            "size": len(data),
            "symbols": len(raw) // 24,
            "strtab": len(strings),
            "longest_name": longest,
            "names_per_strtab_byte": total / max(len(strings), 1),
            "largest_debug": largest.size if largest else 0,
            "largest_debug_ratio": (
                largest.size / len(zlib.compress(image.section_bytes(largest), 9)) if largest else 0
            ),
            "best_debug_ratio": best_ratio,
        }


def logs(corpus: Corpus) -> list[Path]:
    found = sorted(corpus.root.rglob("*.log"))
    for folder in ("report", "guilty", "guilty_raw", "symbolize"):
        found += sorted(p for p in (corpus.syzkaller / folder).iterdir() if p.name.isdigit())
    return found


def log_facts(path: Path) -> dict[str, int]:
    raw = path.read_bytes()
    lines = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    report_lines = report_bytes = report_frames = 0
    for report in iter_reports(raw):
        count = report.last_line - report.first_line + 1
        size = sum(len(line) + 1 for line in lines[report.first_line - 1 : report.last_line])
        report_lines = max(report_lines, count)
        report_bytes = max(report_bytes, size)
        report_frames = max(report_frames, sum(len(t.frames) for t in report.traces))
    return {
        "longest_line": max(len(line) for line in lines),
        "report_lines": report_lines,
        "report_bytes": report_bytes,
        "report_frames": report_frames,
    }


def main() -> int:
    corpus = Corpus(_corpus_root())
    print(
        "image                                    size MB  symbols strtab KB  name  names/byte"
        "  debug MB  ratio  best"
    )
    maxima: dict[str, float] = {}
    for path in images(corpus):
        facts = image_facts(path)
        for key, value in facts.items():
            maxima[key] = max(maxima.get(key, 0), value)
        shown = os.path.relpath(path, corpus.root) if corpus.root in path.parents else path.name
        print(
            f"{shown[-40:]:<40} {facts['size'] / 1e6:>8.1f} {facts['symbols']:>8} "
            f"{facts['strtab'] / 1e3:>9.0f} {facts['longest_name']:>5} "
            f"{facts['names_per_strtab_byte']:>11.3f} {facts['largest_debug'] / 1e6:>9.1f} "
            f"{facts['largest_debug_ratio']:>6.1f} {facts['best_debug_ratio']:>5.1f}"
        )
    log_maxima: dict[str, tuple[int, str]] = {}
    for path in logs(corpus):
        for key, value in log_facts(path).items():
            if value > log_maxima.get(key, (-1, ""))[0]:
                log_maxima[key] = (value, os.path.relpath(path, corpus.root))
    print()
    print("maxima over the images:")
    for key, value in maxima.items():
        print(f"  {key:<22} {value:,.3f}")
    print(f"maxima over {len(logs(corpus))} logs:")
    for key, (value, where) in log_maxima.items():
        print(f"  {key:<22} {value:,}  ({where})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
