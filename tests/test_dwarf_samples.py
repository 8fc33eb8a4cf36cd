"""Every code byte of the sample images, against llvm-symbolizer (vmlinux) and addr2line -j
(modules): gcc, gcc LTO, clang, clang ThinLTO and full LTO, all DWARF 5.

The oracles run on the images as they are; llvm-symbolizer 14 answers from the wrong section
for ``.ko`` files (docs/kernel-facts.md#dwarf-on-kernels), so modules are checked with binutils
``addr2line -j SECTION``, which names the outermost function from DWARF (bfd only takes the symbol
table's name when the symbol starts at the DWARF function, which never holds in an ET_REL file).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import SAMPLES, Entry, addr2line, llvm_symbolizer

from ltosyms.dwarf import SourceLocation
from ltosyms.elf.debug_sections import dwarf_resolver
from ltosyms.elf.image import open_image
from ltosyms.elf.symtab import SymbolTable


def sample_vmlinux() -> list[Path]:
    return sorted(p for p in SAMPLES.glob("vmlinux-*") if p.is_file() and p.suffix == "")


def sample_modules() -> list[Path]:
    return sorted(SAMPLES.glob("*.ko"))


def chain_of(locations: tuple[SourceLocation, ...], outer_from_dwarf: bool) -> list[Entry]:
    chain = []
    for depth, location in enumerate(locations):
        function = location.function
        if depth == len(locations) - 1 and outer_from_dwarf and location.dwarf_function:
            function = location.dwarf_function
        chain.append((function, location.full_path, location.line))
    return chain


@pytest.mark.skipif(shutil.which("llvm-symbolizer") is None, reason="llvm-symbolizer missing")
@pytest.mark.parametrize("path", sample_vmlinux(), ids=lambda p: p.name)
def test_every_code_byte_matches_llvm_symbolizer(path: Path) -> None:
    with open_image(path) as image:
        resolver = dwarf_resolver(image, symbols=SymbolTable(image))
        addresses = [
            address
            for section in image.sections
            if section.is_exec and section.size
            for address in range(section.link_address, section.end_address)
        ]
        expected = llvm_symbolizer(path, addresses)
        differences = []
        for address in addresses:
            locations = resolver.locations(address)
            got = chain_of(locations, outer_from_dwarf=False)
            if got and expected[address] and expected[address][-1][0] is None:
                # No DWARF function here (padding after a function): we name the nearest
                # symbol, as kallsyms and addr2line do; llvm-symbolizer names nothing past the
                # symbol's size.
                assert locations[-1].dwarf_function is None
                got[-1] = (None, *got[-1][1:])
            if got != expected[address]:
                differences.append(f"{address:#x}: {got} != {expected[address]}")
        assert len(addresses) > 2000
        assert differences == [], differences[:10]


@pytest.mark.skipif(shutil.which("addr2line") is None, reason="binutils addr2line missing")
@pytest.mark.parametrize("path", sample_modules(), ids=lambda p: p.name)
def test_every_module_code_byte_matches_addr2line(path: Path) -> None:
    with open_image(path) as image:
        resolver = dwarf_resolver(image, symbols=SymbolTable(image))
        checked = 0
        differences = []
        for section in image.sections:
            if not (section.is_exec and section.size):
                continue
            offsets = list(range(section.size))
            expected = addr2line(path, section.name, offsets)
            for offset in offsets:
                locations = resolver.locations(section.link_address + offset)
                got = chain_of(locations, outer_from_dwarf=True)
                checked += 1
                if got != expected[offset]:
                    differences.append(f"{section.name}+{offset:#x}: {got} != {expected[offset]}")
        assert checked > 300
        assert differences == [], differences[:10]


# -- other DWARF flavours, built from the same sources --------------------------------------

SOURCES = SAMPLES / "src"
CFLAGS = [
    "-O2",
    "-g",
    "-std=gnu11",
    "-ffreestanding",
    "-fno-builtin",
    "-fno-pie",
    "-fno-pic",
    "-mcmodel=kernel",
    "-mno-red-zone",
    "-mno-mmx",
    "-mno-sse",
    "-mno-sse2",
    "-fno-stack-protector",
    "-fno-common",
    "-fno-jump-tables",
    "-fno-omit-frame-pointer",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
    "-Wno-unused-command-line-argument",
]
LDFLAGS = ["-nostdlib", "-static", "-no-pie", "-T", "vmlinux.lds", "-Wl,--build-id=sha1"]
FLAVOURS = {
    # name: (compiler, flags): DWARF 4 (.debug_ranges, v4 line tables), 64-bit DWARF 5,
    # compressed debug sections (SHF_COMPRESSED, zlib).
    "gcc-dwarf4": ("gcc", ["-gdwarf-4"]),
    "gcc-dwarf64": ("gcc", ["-gdwarf-5", "-gdwarf64"]),
    "gcc-dwarf4-compressed": ("gcc", ["-gdwarf-4", "-gz=zlib"]),
    "clang-dwarf4": ("clang", ["-gdwarf-4", "-fuse-ld=lld"]),
}
C_FILES = ["main.c", "lib.c", "widget.c", "drv_alpha.c", "drv_beta.c", "drv_gamma.c"]


def build(tmp: Path, name: str) -> Path | None:
    compiler, flags = FLAVOURS[name]
    if shutil.which(compiler) is None or (compiler == "clang" and not shutil.which("ld.lld")):
        return None
    output = tmp / f"vmlinux-{name}"
    result = subprocess.run(
        [compiler, *CFLAGS, *flags, *LDFLAGS, "-o", str(output), "head.S", *C_FILES],
        cwd=SOURCES,
        capture_output=True,
        text=True,
        check=False,
    )
    return output if result.returncode == 0 else None


def build_module(tmp: Path, name: str) -> Path | None:
    compiler, flags = FLAVOURS[name]
    linker = "ld.lld" if compiler == "clang" else "ld"
    if shutil.which(compiler) is None or shutil.which(linker) is None:
        return None
    flags = [f for f in flags if not f.startswith("-fuse-ld")]
    objects = tmp / f"mod-{name}.o"
    output = tmp / f"mod-{name}.ko"
    compiled = subprocess.run(
        [
            compiler,
            *CFLAGS,
            *flags,
            "-ffunction-sections",
            "-c",
            "mod/sample_mod.c",
            "-o",
            str(objects),
        ],
        cwd=SOURCES,
        capture_output=True,
        check=False,
    )
    if compiled.returncode:
        return None
    linked = subprocess.run(
        [linker, "-r", "-o", str(output), str(objects)], capture_output=True, check=False
    )
    return output if linked.returncode == 0 else None


@pytest.mark.skipif(shutil.which("llvm-symbolizer") is None, reason="llvm-symbolizer missing")
@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_other_dwarf_flavours_match_llvm_symbolizer(
    tmp_path_factory: pytest.TempPathFactory, flavour: str
) -> None:
    path = build(tmp_path_factory.mktemp(flavour), flavour)
    if path is None:
        pytest.skip(f"cannot build the {flavour} sample here")
    test_every_code_byte_matches_llvm_symbolizer(path)


@pytest.mark.skipif(shutil.which("addr2line") is None, reason="binutils addr2line missing")
@pytest.mark.parametrize("flavour", ["gcc-dwarf4", "gcc-dwarf4-compressed", "clang-dwarf4"])
def test_other_module_flavours_match_addr2line(
    tmp_path_factory: pytest.TempPathFactory, flavour: str
) -> None:
    path = build_module(tmp_path_factory.mktemp(flavour), flavour)
    if path is None:
        pytest.skip(f"cannot build the {flavour} module here")
    test_every_module_code_byte_matches_addr2line(path)
