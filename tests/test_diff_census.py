"""The whole-image DWARF census, against llvm-dwarfdump and the sample MANIFEST."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import SAMPLES, Corpus

from ltosyms.diff import diff_images
from ltosyms.elf.dwarf_census import take_census
from ltosyms.elf.image import open_image
from ltosyms.errors import InputError

SAMPLE_IMAGES = [
    "vmlinux-gcc",
    "vmlinux-gcc-lto",
    "vmlinux-clang",
    "vmlinux-clang-thinlto",
    "vmlinux-clang-lto",
]
needs_dwarfdump = pytest.mark.skipif(
    shutil.which("llvm-dwarfdump") is None, reason="llvm-dwarfdump (the oracle) not installed"
)


def inlined_instances_by_dwarfdump(path: Path) -> int:
    output = subprocess.run(
        ["llvm-dwarfdump", "--statistics", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return int(json.loads(output)["#inlined functions"])


@needs_dwarfdump
@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_every_inlined_instance_of_a_sample_is_counted(name: str) -> None:
    with open_image(SAMPLES / name) as image:
        census = take_census(image)
    assert sum(r.count for r in census.inlined.values()) == inlined_instances_by_dwarfdump(
        SAMPLES / name
    )
    assert census.source_root == "/usr/src/linux-sample"


@needs_dwarfdump
def test_every_inlined_instance_of_a_kernel_is_counted(corpus: Corpus) -> None:
    path = corpus.kernel_vmlinux("clang-nolto")
    with open_image(path) as image:
        census = take_census(image)
    assert sum(r.count for r in census.inlined.values()) == inlined_instances_by_dwarfdump(path)
    assert census.source_root.endswith("/linux-source-6.1")
    assert len(census.functions) > 10_000
    # Every function's name resolved, through abstract origins where needed.
    assert all(f.name and f.unit for f in census.functions)


@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_duplicate_statics_resolve_to_their_own_unit(name: str) -> None:
    manifest = json.loads((SAMPLES / "MANIFEST.json").read_text())["images"][name]
    with open_image(SAMPLES / name) as image:
        census = take_census(image)
    for member in manifest["duplicate_statics"]["members"]:
        function = census.function_at(int(member["address"], 16))
        assert function is not None
        assert function.name == manifest["duplicate_statics"]["name"]
        assert "/usr/src/linux-sample/" + (function.unit or "") == member["decl_file"]


def test_gcc_cold_part_belongs_to_its_function() -> None:
    manifest = json.loads((SAMPLES / "MANIFEST.json").read_text())["images"]["vmlinux-gcc-lto"]
    with open_image(SAMPLES / "vmlinux-gcc-lto") as image:
        census = take_census(image)
    for entry in manifest["clones"]["cold"]:
        function = census.function_at(int(entry["address"], 16))
        assert function is not None and function.name == entry["base"]


@pytest.mark.skipif(shutil.which("objcopy") is None, reason="binutils objcopy not installed")
def test_image_without_dwarf(tmp_path: Path) -> None:
    stripped = tmp_path / "vmlinux-nodebug"
    subprocess.run(
        ["objcopy", "--strip-debug", str(SAMPLES / "vmlinux-gcc"), str(stripped)], check=True
    )
    with open_image(stripped) as image, pytest.raises(InputError, match="no DWARF"):
        take_census(image)
    report = diff_images(SAMPLES / "vmlinux-gcc", stripped)
    assert report.base.has_dwarf and not report.new.has_dwarf
    assert any("has no DWARF" in note for note in report.notes)
    assert not report.inline_evidence


def test_truncated_dwarf_is_an_input_error(tmp_path: Path) -> None:
    data = bytearray((SAMPLES / "vmlinux-clang").read_bytes())
    with open_image(SAMPLES / "vmlinux-clang") as image:
        info = image.get_section(".debug_info")
        assert info is not None
        # Unit lengths pointing past the end: a damaged file, not a crash.
        data[info.file_offset : info.file_offset + 4] = b"\xf0\xff\xff\x7f"
    broken = tmp_path / "vmlinux-broken"
    broken.write_bytes(bytes(data))
    with open_image(broken) as image, pytest.raises(InputError):
        take_census(image)
