"""Inputs that once broke a parser, found by ``tools/fuzz.py``, kept so they stay fixed.

Every ELF case is a sample image with a few bytes changed inside one region (offsets are
relative to the region's start in the sample; a negative value ``-1-m`` flips the bits of mask
``m``). The promise under test is the library's: an ``LtosymsError`` or a result, nothing else,
and in bounded time. Cases whose fix is still open are strict xfails naming the failure: when
the owner fixes it, the XPASS turns red until the marker is removed.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from conftest import SAMPLES, elffile

from ltosyms.dwarf import take_census
from ltosyms.elf.debug_sections import dwarf_resolver, dwarf_sections
from ltosyms.elf.image import open_image
from ltosyms.elf.symtab import SymbolTable
from ltosyms.errors import LtosymsError
from ltosyms.oops.parse import iter_reports

TIME_LIMIT = 5  # seconds; every case takes well under 0.1 s when it does not loop


def _open_fix(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, raises=(Exception, TimeLimitExceeded), reason=reason)


class TimeLimitExceeded(BaseException):
    """An input that makes a parser loop (a BaseException: no ``except Exception`` hides it)."""


@contextmanager
def _time_limit() -> Iterator[None]:
    def expire(_signum: int, _frame: object) -> None:
        raise TimeLimitExceeded(f"no result after {TIME_LIMIT} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TIME_LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# (sample, region, patches, what went wrong before the fix)
ELF_CASES = [
    pytest.param(
        "vmlinux-clang-lto", "headers", [(29, -33), (60, -3)],
        id="symtab-sh_link-out-of-range",
        # IndexError in SymbolTable: .symtab's sh_link named a section that does not exist.
    ),
    pytest.param(
        "vmlinux-clang", "headers",
        [(14, 80), (18, -129), (55, 128), (21, 128), (50, -9), (40, 255), (51, -5)],
        id="elf-header-offsets-overflow",
        # OverflowError from pyelftools (struct_parse): an offset beyond what seek() takes.
    ),
    pytest.param(
        "vmlinux-clang-lto", "section-headers",
        [(1375, 0), (1376, 0), (1377, 0), (1378, 0), (1379, 0), (1380, 0), (1381, 0),
         (1382, 128), (98, 243), (1359, -17), (307, 75), (638, 0), (931, -3)],
        id="section-name-offset-overflow",
        # OverflowError from pyelftools (parse_cstring_from_stream): a huge sh_name.
    ),
    pytest.param(
        "vmlinux-gcc", ".debug_aranges", [(10, 0)],
        id="aranges-address-size-zero",
        # ZeroDivisionError in dwarf/ranges.py read_aranges: address_size 0 made tuples 0 long.
    ),
    pytest.param(
        "vmlinux-gcc", ".debug_line", [(130, -17)],
        id="line-v5-file-count-huge",
    ),
    pytest.param(
        "vmlinux-clang-thinlto", ".debug_rnglists",
        [(136, 255), (138, 255), (139, 255), (140, 255), (141, 255), (142, 255), (143, 255)],
        id="addr-base-far-past-debug-addr",
        # OverflowError in Unit.addrx: an index so far past .debug_addr that struct could not
        # even take the offset (found once the resolver stopped turning every exception into
        # "malformed DWARF").
    ),
]  # fmt: skip


def _region_start(image_path: Path, region: str) -> int:
    with open_image(image_path) as image:
        if region == "headers":
            return 0
        if region == "section-headers":
            return int(elffile(image_path).header["e_shoff"])
        section = image.get_section(region)
        assert section is not None, f"{image_path.name} has no {region}"
        return section.file_offset


def _damaged_copy(sample: str, region: str, patches: list[tuple[int, int]], work: Path) -> Path:
    original = SAMPLES / sample
    start = _region_start(original, region)
    data = bytearray(original.read_bytes())
    for offset, value in patches:
        if value < 0:
            data[start + offset] ^= -1 - value
        else:
            data[start + offset] = value
    path = work / f"{sample}-damaged"
    path.write_bytes(bytes(data))
    return path


def _use(path: Path, probes: list[int]) -> None:
    """Open, load symbols, look up and resolve, take the DWARF census, as the commands do."""
    with open_image(path) as image:
        table = SymbolTable(image)
        for address in probes:
            table.lookup(address)
            table.function_containing(address)
        if image.has_dwarf():
            resolver = dwarf_resolver(image)
            for address in probes:
                with suppress(LtosymsError):
                    resolver.locations(address)
                with suppress(LtosymsError):
                    resolver.compile_unit(address)
            if not image.is_module:
                with suppress(LtosymsError):
                    take_census(dwarf_sections(image), workers=1)


def _probes(sample: str) -> list[int]:
    with open_image(SAMPLES / sample) as image:
        table = SymbolTable(image)
        functions = [s for s in table if s.is_function and s.elf_size][:24]
    return [a for s in functions for a in (s.link_address, s.link_address + s.elf_size // 2)]


@pytest.mark.parametrize(("sample", "region", "patches"), ELF_CASES)
def test_damaged_image_gives_a_clean_error_or_a_result(
    sample: str, region: str, patches: list[tuple[int, int]], tmp_path: Path
) -> None:
    path = _damaged_copy(sample, region, patches, tmp_path)
    with _time_limit(), suppress(LtosymsError):
        _use(path, _probes(sample))


OOPS_CASES = [
    pytest.param(
        b"[   34.231459][ T2205]  entry_SYSCALL_64_after_hwframe+0x49/0xbe\n"
        b"[   34.241719][ T2205] Code: 28 00 00 00 75 05 48 83 c4 28 c3 e8 81 14 00 00 90 48 "
        b"89 f8 48\xe2\x80\xa8 89 f7 48 89 d6 48 89 ca 4d 89 c2 4d 89 c8 4c 8b 4c 24 08 0f 05 "
        b"<48> 3d 01 f0 ff ff 73 01 c3 48 c7 c1 b8 ff ff ff f7 d8 64 89 01 48\n",
        id="code-line-with-unicode-line-separator",
    ),
]


@pytest.mark.parametrize("log", OOPS_CASES)
def test_damaged_log_gives_reports_or_a_clean_error(log: bytes) -> None:
    with _time_limit(), suppress(LtosymsError):
        for _report in iter_reports(log):
            pass
