"""Shared fixtures. Real-kernel tests go through :func:`corpus` and nothing else.

The corpus (``../shared/corpus`` beside the project, or ``$LTOSYMS_CORPUS``) holds real kernels
and logs. Without it those tests skip with a reason; ``LTOSYMS_REQUIRE_CORPUS=1`` (set by
``.ci/run``) turns the skip into a failure so CI always exercises real kernels.
"""

from __future__ import annotations

import json
import mmap
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ltosyms.diff import DiffReport, ImageCensus, Maintainers, diff_censuses, take_image_census
from ltosyms.elf.image import KernelImage, open_image
from ltosyms.elf.kernel import LoadedImage, load_any

PROJECT = Path(__file__).resolve().parent.parent
SAMPLES = PROJECT / "testdata" / "vmlinux-samples"
KERNEL_VARIANTS = ("clang-thinlto", "clang-nolto", "gcc-nolto", "arm64-clang-thinlto")
# Every small kernel of the corpus: the four builds above, Linux 6.12 (clang ThinLTO) and the
# gcc LTO build. The DWARF tests run on all of them.
SMALL_KERNELS = (*KERNEL_VARIANTS, "clang-thinlto-6.12", "gcc-lto")


@dataclass(frozen=True)
class Corpus:
    root: Path

    @property
    def debian(self) -> Path:
        return self.root / "debian-6.1.0-57-cloud-amd64"

    @property
    def kernels(self) -> Path:
        return self.root / "kernels"

    @property
    def syzkaller(self) -> Path:
        return self.root / "syzkaller"

    def debian_vmlinux(self) -> Path:
        return _fetch(self.debian / "get-vmlinux.sh")

    def kernel_vmlinux(self, variant: str) -> Path:
        return _fetch(self.kernels / "get-vmlinux.sh", variant)


_fetched: dict[tuple[str, ...], Path] = {}


def _fetch(script: Path, *args: str) -> Path:
    key = (str(script), *args)
    if key not in _fetched:
        # The corpus scripts unpack into $LTOSYMS_CORPUS_CACHE (never into the read-only corpus).
        result = subprocess.run(
            ["sh", str(script), *args], capture_output=True, text=True, check=True, timeout=1800
        )
        _fetched[key] = Path(result.stdout.strip().splitlines()[-1])
    return _fetched[key]


def _corpus_root() -> Path:
    return Path(os.environ.get("LTOSYMS_CORPUS", PROJECT.parent / "shared" / "corpus"))


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    root = _corpus_root()
    if not (root / "README.md").is_file():
        reason = f"real-kernel corpus not found at {root} (set LTOSYMS_CORPUS)"
        if os.environ.get("LTOSYMS_REQUIRE_CORPUS") == "1":
            pytest.fail(reason + "; LTOSYMS_REQUIRE_CORPUS=1 requires it")
        pytest.skip(reason)
    return Corpus(root)


@pytest.fixture(scope="session")
def kernel_diff(corpus: Corpus) -> Callable[..., DiffReport]:
    """``kernel_diff(base, new, dwarf=True, maintainers=None)``: the diff of two corpus kernels
    (variant names, or paths for modules). Each image's census is taken once per session, as a
    stored census would serve several diffs."""
    censuses: dict[tuple[str, bool], ImageCensus] = {}

    def census(image: str, dwarf: bool) -> ImageCensus:
        if (image, dwarf) not in censuses:
            path = Path(image) if "/" in image else corpus.kernel_vmlinux(image)
            loaded = load_any(path)
            try:
                censuses[(image, dwarf)] = take_image_census(loaded, use_dwarf=dwarf)
            finally:
                loaded.image.close()
        return censuses[(image, dwarf)]

    def diff(
        base: str, new: str, dwarf: bool = True, maintainers: Maintainers | None = None
    ) -> DiffReport:
        return diff_censuses(
            census(base, dwarf),
            census(new, dwarf),
            dwarf_requested=dwarf,
            maintainers=maintainers,
        )

    return diff


@cache
def elffile(path: Path) -> Any:
    """pyelftools' ``ELFFile`` of ``path``: the reference our readers are checked against
    (pyelftools is a test dependency; ltosyms does not import it). The file is mapped, as
    pyelftools reads it lazily."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as file:
        return ELFFile(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ))


@pytest.fixture
def gcc_sample() -> Iterator[KernelImage]:
    """The gcc sample vmlinux, opened (closed after the test)."""
    opened = open_image(SAMPLES / "vmlinux-gcc")
    yield opened
    opened.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "corpus" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.corpus)


# One frame of an inline chain as the oracles print it: function, file, line.
Entry = tuple[str | None, str | None, int | None]


def llvm_symbolizer(path: Path, addresses: list[int]) -> dict[int, list[Entry]]:
    """llvm-symbolizer --inlining at each address: its inline chain, innermost first ([]:
    no answer)."""
    output = subprocess.run(
        ["llvm-symbolizer", "--inlining", "--output-style=JSON", f"--obj={path}"],
        input="\n".join(hex(a) for a in addresses),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = {}
    for line in output.splitlines():
        record = json.loads(line)
        chain = [
            (frame["FunctionName"] or None, frame["FileName"] or None, frame["Line"] or None)
            for frame in record["Symbol"]
        ]
        found[int(record["Address"], 16)] = [] if chain == [(None, None, None)] else chain
    return found


def addr2line(path: Path, section: str, offsets: list[int]) -> dict[int, list[Entry]]:
    """addr2line -i -j SECTION at each offset (binutils relocates an ET_REL file's DWARF
    itself): its inline chain, innermost first ([]: no answer)."""
    output = subprocess.run(
        ["addr2line", "-a", "-f", "-i", "-j", section, "-e", str(path)],
        input="\n".join(hex(o) for o in offsets) + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    found: dict[int, list[Entry]] = {}
    current = -1
    position = 0
    while position < len(output):
        line = output[position]
        if line.startswith("0x") and all(c in "0123456789abcdefx" for c in line):
            current = int(line, 16)
            found[current] = []
            position += 1
            continue
        function, location = output[position], output[position + 1]
        position += 2
        file, _, number = location.rpartition(":")
        line_number = number.split()[0]
        found[current].append(
            (
                None if function == "??" else function,
                None if file == "??" else file,
                None if line_number in ("?", "0") else int(line_number),
            )
        )
    return {
        offset: [] if chain == [(None, None, None)] else chain for offset, chain in found.items()
    }


def runtime_minus_link(dump_lines: list[str], loaded: LoadedImage, name: str = "_stext") -> int:
    """The KASLR offset a /proc/kallsyms dump shows: where ``name`` runs minus its link
    address."""
    runtime = next(int(line.split()[0], 16) for line in dump_lines if line.split()[2:3] == [name])
    link = loaded.symbols.address_of(name)
    assert link is not None
    return runtime - link
