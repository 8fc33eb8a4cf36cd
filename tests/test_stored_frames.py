"""Resolved frames kept in the index (ltosyms.decode.stored_frames): a warm decode takes every
named frame as stored and makes the same reports as a cold one; what cannot be read back is
worked out again; the kind's version follows the code that resolves frames."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import zlib
from pathlib import Path

import pytest
from conftest import PROJECT, SMALL_KERNELS, Corpus

from ltosyms.context import ImageContext, ModuleSet, Session
from ltosyms.decode import Decoder
from ltosyms.decode.decode import DecodedReport
from ltosyms.decode.frames import ImageResolver, ResolvedFrame, SectionPlace
from ltosyms.decode.stored_frames import RECORD_FIELDS, frame_from_values, frame_values
from ltosyms.disasm import CallTarget, CodePoint, NamedCall, TargetKind
from ltosyms.dwarf import FunctionLines, SourceLocation
from ltosyms.elf.image import KernelImage
from ltosyms.index import CacheLocation, StoredValueError, kinds
from ltosyms.index.encoding import pack_flat
from ltosyms.index.store import row_checksum
from ltosyms.oops import iter_reports

FRAMES = kinds.RESOLVED_FRAMES.stored_name

# The code a resolved frame comes out of: the decoder, every stage it reads (symbols, DWARF,
# machine code, naming eras), the bounds it works within, the contexts and index it reads
# stored answers through, and the error texts its notes quote.
RESOLUTION_SOURCES = (
    "decode",
    "disasm",
    "dwarf",
    "elf",
    "names",
    "index",
    "context",
    "limits.py",
    "stores.py",
    "errors.py",
)

# The digest of RESOLUTION_SOURCES that each version of RESOLVED_FRAMES was made with.
RESOLUTION_DIGESTS = {1: "bcb5318c", 2: "4f100511", 3: "a84d8a9b", 4: "c1ae460d", 5: "25853478"}


def resolution_digest() -> str:
    package = PROJECT / "ltosyms"
    digest = 0
    for source in RESOLUTION_SOURCES:
        path = package / source
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest = zlib.crc32(file.relative_to(package).as_posix().encode(), digest)
            digest = zlib.crc32(file.read_bytes(), digest)
    return f"{digest:08x}"


def test_stored_frames_follow_the_code_that_resolves_them() -> None:
    # An index keeps frames between runs of possibly different code: a change to the code
    # that resolves frames must come with a new version of the kind, so that no decode serves
    # the frames the code before it made.
    version = kinds.RESOLVED_FRAMES.version
    digest = resolution_digest()
    assert RESOLUTION_DIGESTS.get(version) == digest, (
        f"the code that resolves frames changed: raise the version of kinds.RESOLVED_FRAMES "
        f"to {max(RESOLUTION_DIGESTS) + 1} and add {max(RESOLUTION_DIGESTS) + 1}: "
        f"{digest!r} to RESOLUTION_DIGESTS"
    )


def decode(vmlinux: Path, log: Path, modules: Path, cache: Path) -> list[DecodedReport]:
    with Session(CacheLocation(directory=cache)) as session:
        decoder = Decoder(session.open_vmlinux(vmlinux), ModuleSet([modules], session))
        with log.open("rb") as file:
            return list(decoder.decode_all(iter_reports(file)))


def stored_frames(cache: Path) -> int:
    return sum(stored_frames_in(index) for index in cache.glob("*.sqlite"))


def named_frames(reports: list[DecodedReport]) -> int:
    return sum(
        1
        for report in reports
        for frame in report.iter_frames()
        if frame.resolved is not None and frame.frame.symbol is not None
    )


def resolving_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("a frame was resolved again")

    monkeypatch.setattr(ImageResolver, "resolve_named", refuse)


# Per log: the frames the index keeps after a cold decode (one per distinct frame as printed,
# Code: bytes included, in the vmlinux's and the modules' indexes), and the named frames printed.
KEPT = {
    "clang-thinlto": (80, 332),
    "clang-nolto": (81, 320),
    "gcc-nolto": (77, 315),
    "arm64-clang-thinlto": (89, 432),
    "clang-thinlto-6.12": (81, 419),
    "gcc-lto": (79, 337),
    "debian:console-sysrq.log": (132, 656),
}


@pytest.mark.parametrize("variant", SMALL_KERNELS)
def test_a_warm_decode_takes_every_named_frame_as_stored(
    corpus: Corpus, variant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = corpus.kernels / variant
    vmlinux = corpus.kernel_vmlinux(variant)
    cold = decode(vmlinux, kernel / "console.log", kernel, tmp_path)
    assert (stored_frames(tmp_path), named_frames(cold)) == KEPT[variant]
    resolving_refused(monkeypatch)
    assert decode(vmlinux, kernel / "console.log", kernel, tmp_path) == cold


def test_a_warm_decode_of_the_debian_log_takes_its_module_frames_as_stored(
    corpus: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = corpus.debian / "logs" / "console-sysrq.log"
    modules = corpus.debian / "modules"
    cold = decode(corpus.debian_vmlinux(), log, modules, tmp_path)
    kept = stored_frames(tmp_path)
    assert (kept, named_frames(cold)) == KEPT["debian:console-sysrq.log"]
    module_indexes = [index for index in tmp_path.glob("*.sqlite") if stored_frames_in(index)]
    assert len(module_indexes) == 6  # the vmlinux and the five modules the log names
    resolving_refused(monkeypatch)
    assert decode(corpus.debian_vmlinux(), log, modules, tmp_path) == cold
    assert stored_frames(tmp_path) == kept


def stored_frames_in(index: Path) -> int:
    with sqlite3.connect(index) as connection:
        (rows,) = connection.execute(
            "SELECT count(*) FROM derived WHERE kind = ?", (FRAMES,)
        ).fetchone()
    return int(rows)


def test_a_stored_frame_that_does_not_read_back_is_worked_out_again(
    corpus: Corpus, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kernel = corpus.kernels / "clang-thinlto"
    vmlinux = corpus.kernel_vmlinux("clang-thinlto")
    cold = decode(vmlinux, kernel / "console.log", kernel, tmp_path)
    # Under a valid checksum: a record cut short, and one naming a symbol past the table.
    damaged = [pack_flat([1], []), pack_flat([0] * 8 + [10**9, 0, 0, 0, 0, None], [None])]
    index = max(tmp_path.glob("*.sqlite"), key=stored_frames_in)  # the vmlinux's
    with sqlite3.connect(index) as connection:
        keys = [
            key
            for (key,) in connection.execute(
                "SELECT key FROM derived WHERE kind = ? ORDER BY key", (FRAMES,)
            )
        ]
        for key, data in zip(keys, damaged, strict=False):
            connection.execute(
                "UPDATE derived SET data = ?, crc32 = ? WHERE kind = ? AND key = ?",
                (data, row_checksum(FRAMES, key, data), FRAMES, key),
            )
    with caplog.at_level(logging.WARNING):
        assert decode(vmlinux, kernel / "console.log", kernel, tmp_path) == cold
    warnings = [r.getMessage() for r in caplog.records if "stored frame" in r.getMessage()]
    assert len(warnings) == 1 and "is not used" in warnings[0]
    # Worked out again and stored in their place: the next decode takes them as stored.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert decode(vmlinux, kernel / "console.log", kernel, tmp_path) == cold
    assert not [r for r in caplog.records if "stored frame" in r.getMessage()]
    assert stored_frames(tmp_path) == KEPT["clang-thinlto"][0]


def test_every_field_of_a_frame_is_kept() -> None:
    # A field added to a record a frame holds must be added to what the index keeps of it.
    for record, kept in RECORD_FIELDS.items():
        assert tuple(field.name for field in dataclasses.fields(record)) == kept, record


def test_frame_values_read_back_as_the_same_record(gcc_sample: KernelImage) -> None:
    context = ImageContext(image=gcc_sample)
    symbols = context.symbols
    first, second = symbols.symbol(1), symbols.symbol(2)
    line = SourceLocation(
        function="f", file="a.c", full_path="/s/a.c", line=3, column=None, inlined=True
    )
    frame = ResolvedFrame(
        module="lkdtm",
        notes=("one", ""),
        symbol=first,
        link_address=first.link_address + 5,
        lookup_address=None,
        not_return_address=True,
        locations=(
            line,
            SourceLocation(
                function=None,
                file=None,
                full_path=None,
                line=None,
                column=0,
                inlined=False,
                dwarf_function="g",
            ),
        ),
        named_call=NamedCall(
            site=CodePoint(symbol=None, offset=-3, section=".text", link_address=None),
            mnemonic="call",
            target=CallTarget(
                kind=TargetKind.DIRECT,
                symbol="h",
                offset=-1,
                link_address=None,
                alternatives=("a", "b"),
            ),
        ),
        function_pointer=second,
        place=SectionPlace(section=".text.f", offset=-2),
        candidate_places=(None, SectionPlace(section=".text", offset=7)),
        candidate_lines=(line, None),
        candidate_units=(None, "b.c"),
        candidate_function_lines=(FunctionLines(file=None, first=1, last=9), None),
    )
    assert frame_from_values(frame_values(frame), context) == frame
    numbers, texts, raw = frame_values(frame)
    with pytest.raises(StoredValueError):
        frame_from_values((numbers[:-1], texts, raw), context)
    with pytest.raises(StoredValueError):
        frame_from_values((numbers, [*texts, "more"], raw), context)
