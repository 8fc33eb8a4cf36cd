"""decode on synthesized traces built from the corpus kernels' real call sites.

The suites in ``tests/data/synth`` are written by ``tools/synth_traces.py``: per naming style
(``exact``, ``llvm-cut`` as 6.1.42+ prints, ``first-dot`` as 5.16-6.1.41 prints, the gcc-LTO
numeric filter), a frame for suffixed functions that call something (``name.llvm.N``,
``name.lto_priv.N``, ``.cold``, full LTO's ``name.N``; a deterministic sample of up to 200
per style), and for every text name several copies print as, a ``RIP:`` inside a copy with a
real direct caller's frame after it and a copy's own return-address frame after its callee's
``RIP:``. Each frame carries the ELF symbol it means, the call site, the copies that print with
its name under any era, the copies the evidence cannot reject (kallsyms size; a call ending at
the return address; between adjacent frames, the caller's direct call entering the callee,
which settles an ambiguous caller and an ambiguous callee alike), and llvm-symbolizer's inline
chain.

Regenerate with ``python tools/synth_traces.py`` when a corpus kernel changes (the fixture
checks the build ids) and review the diff.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Corpus

from ltosyms.context import Session
from ltosyms.decode.decode import DecodedFrame, Decoder
from ltosyms.oops.parse import iter_reports

SYNTH = Path(__file__).resolve().parent / "data" / "synth"
SUITES = (
    "clang-thinlto",
    "clang-thinlto-6.12",
    "gcc-nolto",
    "gcc-lto",
    "arm64-clang-thinlto",
    "debian",
    "clang-lto-sample",
)
SAMPLE = Path(__file__).resolve().parent.parent / "testdata" / "vmlinux-samples"
EXACT_IP_KINDS = ("callee", "dup-callee")
DUPLICATE_KINDS = ("dup-callee", "dup-caller")


@dataclass(frozen=True, slots=True)
class Expected:
    line: int
    kind: str
    style: str  # how the frame prints its name: exact, llvm-cut, first-dot, gcc-lto-numeric
    symbol: str  # ELF name
    link_address: int
    call_site: int | None
    candidates: tuple[int, ...]  # every copy printed with this name; () when only one
    survivors: tuple[int, ...]  # the copies the evidence cannot reject
    chain: tuple[tuple[str | None, str | None, int | None], ...]

    @property
    def exact_ip(self) -> bool:
        return self.kind in EXACT_IP_KINDS


@dataclass(frozen=True, slots=True)
class Suite:
    kernel: str
    build_id: str
    log: str
    frames: tuple[Expected, ...]


def load_suite(kernel: str) -> Suite:
    raw = json.loads((SYNTH / f"{kernel}.json").read_text())
    assert raw["schema"] == "ltosyms.synth/2"
    base = int(raw["address_base"], 16)
    fields = raw["frame_fields"]
    files = raw["files"]

    def address(offset: str) -> int:
        return base + int(offset, 16)

    frames = []
    for row in raw["frames"]:
        record = dict(zip(fields, row, strict=True))
        candidates = tuple(address(a) for a in record["candidates"])
        frames.append(
            Expected(
                line=record["line"],
                kind=record["kind"],
                style=record["style"],
                symbol=record["symbol"],
                link_address=address(record["address"]),
                call_site=None if record["call_site"] is None else address(record["call_site"]),
                candidates=candidates,
                survivors=tuple(candidates[i] for i in record["survivors"]),
                chain=tuple(
                    (function, None if file is None else files[file], line or None)
                    for function, file, line in record["chain"]
                ),
            )
        )
    return Suite(
        raw["kernel"], raw["vmlinux_build_id"], "\n".join(raw["log"]) + "\n", tuple(frames)
    )


def vmlinux_for(corpus: Corpus, kernel: str) -> Path:
    if kernel == "clang-lto-sample":
        return SAMPLE / "vmlinux-clang-lto"
    return corpus.debian_vmlinux() if kernel == "debian" else corpus.kernel_vmlinux(kernel)


@dataclass(frozen=True, slots=True)
class Decoded:
    suite: Suite
    by_line: dict[int, DecodedFrame]


@pytest.fixture(scope="module", params=SUITES)
def decoded(request: pytest.FixtureRequest, corpus: Corpus) -> Decoded:
    suite = load_suite(request.param)
    loaded = Session(None).open_vmlinux(vmlinux_for(corpus, suite.kernel))
    assert loaded.build_id == suite.build_id, (
        f"{suite.kernel}: the suite was made from another vmlinux; rerun tools/synth_traces.py"
    )
    decoder = Decoder(loaded)
    by_line: dict[int, DecodedFrame] = {}
    for report in decoder.decode_all(iter_reports(suite.log.encode())):
        assert not report.mismatch, report.warnings
        for frame in report.iter_frames():
            by_line.setdefault(frame.frame.line, frame)
    assert sorted(by_line) == sorted(e.line for e in suite.frames)
    return Decoded(suite, by_line)


# Suffixed frames per style in each suite (tools/synth_traces.py --max-cases 200): every
# style the kernel's suffixed functions are printed in.
STYLES = {
    "clang-thinlto": ("exact", "llvm-cut", "first-dot"),
    "clang-thinlto-6.12": ("exact", "llvm-cut", "first-dot"),
    "gcc-nolto": ("exact", "first-dot"),
    "gcc-lto": ("exact", "first-dot", "gcc-lto-numeric"),
    "arm64-clang-thinlto": ("llvm-cut",),
    "debian": (),
    "clang-lto-sample": ("exact", "first-dot"),
}


def test_suffixed_frames_resolve_to_their_elf_symbol(decoded: Decoded) -> None:
    """A function printed in any era's style (``try_to_wake_up`` for
    ``try_to_wake_up.llvm.N``, ``create_worker`` for ``create_worker.lto_priv.0``) is that
    symbol at that call, or, when the evidence leaves several copies, ambiguous with them."""
    suffixed = [e for e in decoded.suite.frames if e.kind == "suffixed"]
    assert sorted({e.style for e in suffixed}) == sorted(STYLES[decoded.suite.kernel])
    counts: Counter[str] = Counter()
    for expected in suffixed:
        resolved = decoded.by_line[expected.line].resolved
        assert resolved is not None, expected
        if len(expected.survivors) > 1:
            assert resolved.ambiguous, expected
            listed = {c.symbol.link_address for c in resolved.candidates}
            assert listed == set(expected.survivors), expected
            counts[f"{expected.style} ambiguous"] += 1
            continue
        assert resolved.symbol is not None and not resolved.ambiguous, expected
        assert (resolved.symbol.name, resolved.symbol.link_address) == (
            expected.symbol,
            expected.link_address,
        )
        assert resolved.call_site is not None
        assert resolved.call_site.link_address == expected.call_site
        counts[f"{expected.style} resolved"] += 1
    print(f"{decoded.suite.kernel}: {dict(counts)}")
    for style in STYLES[decoded.suite.kernel]:
        # The small sample has 2 renamed functions; the corpus kernels have hundreds.
        assert counts[f"{style} resolved"] >= (1 if "sample" in decoded.suite.kernel else 100)


def test_duplicates_never_resolve_to_a_wrong_copy(decoded: Decoded) -> None:
    """Separable copies are told apart; the others are ambiguous with every copy left."""
    counts: Counter[str] = Counter()
    for expected in decoded.suite.frames:
        if not expected.candidates:
            continue
        assert expected.link_address in expected.survivors  # the suite's own consistency
        resolved = decoded.by_line[expected.line].resolved
        assert resolved is not None, expected
        kind = "duplicate" if expected.kind in DUPLICATE_KINDS else "other"
        if resolved.symbol is not None:
            assert resolved.symbol.link_address == expected.link_address, (
                f"line {expected.line}: {expected.symbol} resolved to the copy at "
                f"{resolved.symbol.link_address:#x}, the frame is {expected.link_address:#x}"
            )
            counts[f"{kind} resolved"] += 1
            continue
        assert resolved.ambiguous, expected
        # Only what the evidence cannot separate may stay ambiguous ...
        assert len(expected.survivors) > 1, (
            f"line {expected.line}: {expected.symbol} is ambiguous, but the evidence leaves "
            f"only {expected.link_address:#x}"
        )
        # ... and then every copy left is listed, with the evidence that was used.
        listed = {c.symbol.link_address for c in resolved.candidates}
        assert listed == set(expected.survivors), expected
        assert resolved.evidence
        counts[f"{kind} ambiguous"] += 1
    separable = sum(
        1
        for e in decoded.suite.frames
        if e.kind in DUPLICATE_KINDS and len(e.candidates) > 1 and len(e.survivors) == 1
    )
    print(f"{decoded.suite.kernel}: {dict(counts)}; separable duplicate frames {separable}")
    if decoded.suite.kernel != "arm64-clang-thinlto":
        assert counts["duplicate resolved"] >= separable > 0
    if decoded.suite.kernel not in ("arm64-clang-thinlto",):
        assert counts["duplicate ambiguous"] > 0


def test_every_frame_is_its_symbol_and_call(decoded: Decoded) -> None:
    for expected in decoded.suite.frames:
        resolved = decoded.by_line[expected.line].resolved
        assert resolved is not None
        if resolved.ambiguous:
            continue  # judged above
        assert resolved.symbol is not None, expected
        assert resolved.symbol.link_address == expected.link_address, expected
        if expected.exact_ip:
            assert resolved.call_site is None
        else:
            assert not resolved.not_return_address, expected
            assert resolved.call_site is not None
            assert resolved.call_site.link_address == expected.call_site, expected


def test_chains_equal_llvm_symbolizer(decoded: Decoded) -> None:
    checked = 0
    differences = []
    for expected in decoded.suite.frames:
        resolved = decoded.by_line[expected.line].resolved
        if resolved is None or resolved.ambiguous:
            continue
        checked += 1
        ours = tuple((loc.function, loc.file, loc.line) for loc in resolved.locations)
        if ours != expected.chain:
            differences.append(
                f"line {expected.line} {expected.symbol}: {ours} != {expected.chain}"
            )
    agreement = 100 * (checked - len(differences)) / checked
    print(
        f"{decoded.suite.kernel}: chains {checked - len(differences)}/{checked} ({agreement:.2f}%)"
    )
    assert len(differences) <= checked * 0.005, "\n".join(differences)
