"""Duplicate static names on the committed sample images (docs/kernel-facts.md#printed-names and
docs/kernel-facts.md#code-line).

Three drivers of ``testdata/vmlinux-samples/src`` define a static ``name_show()``: alpha's and
beta's have the same code length (equal ELF and kallsyms sizes), gamma's is longer. An oops
prints all three as ``name_show+0xOFF/0xSIZE``. The printed kallsyms size names gamma's copy,
where scripts/decode_stacktrace.sh takes the first ``nm`` match; alpha's and beta's copies
differ in nothing a trace shows (same size, same call at the same offset, same callee), so a
frame of one of them is reported as ambiguous, with both copies and the evidence used.
Expectations come from ``MANIFEST.json`` (read back from the binaries with nm/readelf), the
return addresses from the images' own code. The synthesized suites (test_decode_synth.py)
check the same rules on every duplicated name of the corpus kernels.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import SAMPLES, Corpus

from ltosyms.cli import cli
from ltosyms.context import ImageContext, Session
from ltosyms.decode.candidates import EvidenceKind
from ltosyms.decode.decode import DecodedFrame, Decoder
from ltosyms.disasm import CallKind, CallSite
from ltosyms.disasm.decoder import direct_target, is_call, iter_instructions
from ltosyms.oops.parse import iter_reports

MANIFEST: dict[str, Any] = json.loads((SAMPLES / "MANIFEST.json").read_text())
NAME = "name_show"


def images_with_plain_duplicates() -> list[str]:
    """Images whose copies all carry the ELF name ``name_show`` (gcc and clang without LTO,
    clang ThinLTO): the name every oops prints, whatever the kernel's cleanup rule."""
    found = []
    for image, facts in MANIFEST["images"].items():
        members = facts["duplicate_statics"]["members"]
        if facts["duplicate_statics"]["name"] == NAME and all(m["name"] == NAME for m in members):
            found.append(image)
    return found


IMAGES = images_with_plain_duplicates()


def test_the_samples_have_plain_duplicates() -> None:
    assert {"vmlinux-gcc", "vmlinux-clang", "vmlinux-clang-thinlto"} <= set(IMAGES)


@dataclass(frozen=True, slots=True)
class Copy:
    link_address: int
    kallsyms_size: int
    decl_file: str
    return_offset: int  # the address after its call to sample_sprintf(), from the symbol


@dataclass(frozen=True, slots=True)
class Sample:
    path: Path
    twins: tuple[Copy, Copy]  # same ELF and kallsyms size
    odd: Copy  # the copy whose kallsyms size is unique
    callee_frame: str  # sample_sprintf+0x0/0xSIZE
    nm_first: int  # the copy decode_stacktrace.sh takes


def _hex(text: str) -> int:
    return int(text, 16)


def load_sample(image: str) -> Sample:
    facts = MANIFEST["images"][image]
    path = SAMPLES / facts["file"]
    loaded = Session(None).open_vmlinux(path)
    text_symbols = facts["text_symbols"]
    callee = next(s for s in text_symbols if s["name"] == "sample_sprintf")
    callee_address = _hex(callee["address"])
    copies = []
    for member in facts["duplicate_statics"]["members"]:
        start = _hex(member["address"])
        code = loaded.image.read(start, member["elf_size"])
        returns = [
            address + size - start
            for address, size, mnemonic, op_str in iter_instructions("x86_64", code, start)
            if is_call("x86_64", mnemonic)
            and direct_target("x86_64", mnemonic, op_str) == callee_address
        ]
        copies.append(
            Copy(start, member["kallsyms_size"], member["decl_file"], min(returns, default=-1))
        )
    sizes = [c.kallsyms_size for c in copies]
    odd = next(c for c in copies if sizes.count(c.kallsyms_size) == 1)
    twins = tuple(c for c in copies if c is not odd)
    assert len(twins) == 2
    # decode_stacktrace.sh (6.1) resolve_symbol(): nm "$objfile" | awk '$3 == name &&
    # ($2 == "t" || $2 == "T") {print $1; exit}': the first listed copy. nm -n lists by
    # address; plain nm lists equal names in .symtab order, which is also address order here.
    listed = sorted(
        (s for s in text_symbols if s["nm_type"] in ("t", "T")),
        key=lambda s: (_hex(s["address"]), s["name"]),
    )
    nm_first = next(_hex(s["address"]) for s in listed if s["name"] == NAME)
    return Sample(
        path,
        (twins[0], twins[1]),
        odd,
        f"sample_sprintf+0x0/{callee['kallsyms_size']:#x}",
        nm_first,
    )


def oops(release: str, callee_frame: str, frame: str) -> str:
    return (
        "BUG: kernel NULL pointer dereference, address: 0000000000000000\n"
        "#PF: supervisor read access in kernel mode\n"
        "Oops: 0000 [#1] SMP\n"
        f"CPU: 0 PID: 1 Comm: cat Not tainted {release} #1\n"
        f"RIP: 0010:{callee_frame}\n"
        "Call Trace:\n"
        " <TASK>\n"
        f" {frame}\n"
        " </TASK>\n"
    )


def decode_frame(path: Path, log: str, printed: str) -> DecodedFrame:
    decoder = Decoder(Session(None).open_vmlinux(path))
    reports = list(decoder.decode_all(iter_reports(log.encode())))
    assert len(reports) == 1
    found = [f for f in reports[0].iter_frames() if f.frame.raw_text.strip() == printed]
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("image", IMAGES)
def test_size_picks_the_copy_decode_stacktrace_misses(image: str) -> None:
    sample = load_sample(image)
    odd = sample.odd
    assert odd.return_offset > 0
    printed = f"{NAME}+{odd.return_offset:#x}/{odd.kallsyms_size:#x}"
    decoded = decode_frame(sample.path, oops("6.1.0-sample", sample.callee_frame, printed), printed)
    resolved = decoded.resolved
    assert resolved is not None and not resolved.ambiguous
    assert resolved.symbol is not None
    assert resolved.symbol.link_address == odd.link_address
    assert resolved.call_site is not None
    assert resolved.call_site.link_address + resolved.call_site.length == (
        odd.link_address + odd.return_offset
    )
    assert resolved.locations[-1].full_path == odd.decl_file
    size_steps = [e for e in resolved.evidence if e.kind is EvidenceKind.KALLSYMS_SIZE]
    assert [(e.candidates_before, e.candidates_after) for e in size_steps] == [(3, 1)]
    # The script's first nm match is another copy: name_show+OFF lands past its end.
    assert sample.nm_first != odd.link_address
    assert sample.nm_first in {t.link_address for t in sample.twins}
    assert odd.return_offset >= next(
        t.kallsyms_size for t in sample.twins if t.link_address == sample.nm_first
    )


@pytest.mark.parametrize("image", IMAGES)
def test_equal_sizes_are_ambiguous_with_the_evidence(image: str) -> None:
    sample = load_sample(image)
    first, second = sample.twins
    # Same size, and a call to the same callee ending at the same offset in both copies:
    # nothing in the trace tells them apart.
    assert first.kallsyms_size == second.kallsyms_size
    assert first.return_offset == second.return_offset > 0
    printed = f"{NAME}+{first.return_offset:#x}/{first.kallsyms_size:#x}"
    decoded = decode_frame(sample.path, oops("6.1.0-sample", sample.callee_frame, printed), printed)
    resolved = decoded.resolved
    assert resolved is not None
    assert resolved.ambiguous
    assert resolved.symbol is None and resolved.link_address is None
    assert not resolved.locations  # no source line is picked for one of them
    assert {c.symbol.link_address for c in resolved.candidates} == {
        first.link_address,
        second.link_address,
    }
    steps = [(e.kind, e.candidates_before, e.candidates_after) for e in resolved.evidence]
    assert steps[0] == (EvidenceKind.EXACT_NAME, 0, 3)
    assert (EvidenceKind.KALLSYMS_SIZE, 3, 2) in steps
    # Listed once, as candidates (no note repeats the list), each with its source.
    assert not any("ambiguous" in note for note in resolved.notes)
    assert len(resolved.candidate_units) == len(resolved.candidate_lines) == 2


def test_ambiguous_frames_in_decode_json(tmp_path: Path) -> None:
    """The JSON contract: an ambiguous frame has no symbol or address, every copy left in
    ``candidates``, and the evidence."""
    sample = load_sample("vmlinux-gcc")
    first, second = sample.twins
    printed = f"{NAME}+{first.return_offset:#x}/{first.kallsyms_size:#x}"
    log = tmp_path / "oops.log"
    log.write_text(oops("6.1.0-sample", sample.callee_frame, printed))
    result = CliRunner().invoke(
        cli, ["decode", str(sample.path), str(log), "--json", "--cache-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    [frame] = [f for f in document["reports"][0]["frames"] if f["symbol"] == NAME]
    resolved = frame["resolved"]
    assert resolved["ambiguous"] is True
    assert resolved["symbol"] is None and resolved["address"] is None
    assert sorted(int(c["symbol_address"], 16) for c in resolved["candidates"]) == sorted(
        (first.link_address, second.link_address)
    )
    assert [e["kind"] for e in resolved["evidence"]][:2] == ["exact-name", "kallsyms-size"]
    assert frame["locations"] == []


def direct_calls_into(loaded: ImageContext, wanted: Callable[[str], bool]) -> list[CallSite]:
    """Call sites (found by the decoder's call-site finder) of ``call rel32`` instructions in
    ``.text`` whose target symbol's name satisfies ``wanted``; at most a few."""
    resolver = Decoder(loaded).resolver(None, None)
    assert resolver is not None
    text = loaded.image.get_section(".text")
    assert text is not None
    data = loaded.image.section_bytes(text)
    sites = []
    position = data.find(b"\xe8")
    while 0 <= position < len(data) - 5 and len(sites) < 5:
        target = (
            text.link_address
            + position
            + 5
            + int.from_bytes(data[position + 1 : position + 5], "little", signed=True)
        )
        symbol = loaded.symbols.lookup(target)
        if symbol is not None and symbol.link_address == target and wanted(symbol.name):
            site = resolver.call_at(text.link_address + position + 5)
            if site is not None and site.link_address == text.link_address + position:
                sites.append(site)
        position = data.find(b"\xe8", position + 1)
    return sites


def test_static_call_trampolines_name_no_callee(corpus: Corpus) -> None:
    """A call into ``__SCT__x`` enters whatever function the static call points to at run
    time, so it is no call-target evidence; a plain direct call names its callee."""
    loaded = Session(None).open_vmlinux(corpus.kernel_vmlinux("clang-thinlto"))
    resolver = Decoder(loaded).resolver(None, None)
    assert resolver is not None
    trampoline_calls = direct_calls_into(loaded, lambda name: name.startswith("__SCT__"))
    plain_calls = direct_calls_into(loaded, lambda name: name == "_printk")
    assert trampoline_calls and plain_calls
    for site in trampoline_calls:
        assert site.kind is CallKind.DIRECT
        assert resolver.call_targets(site) is None
    for site in plain_calls:
        assert resolver.call_targets(site) == {loaded.symbols.address_of("_printk")}


def code_line(loaded: ImageContext, rip: int) -> str:
    """An x86 ``Code:`` line as the kernel prints it: 42 bytes before RIP, ``<xx>`` at it."""
    data = loaded.image.read(rip - 42, 64)
    return "Code: " + " ".join(f"<{b:02x}>" if i == 42 else f"{b:02x}" for i, b in enumerate(data))


@pytest.mark.parametrize("image", IMAGES)
def test_code_bytes_pick_between_equal_sized_copies(image: str) -> None:
    """docs/kernel-facts.md#code-line: for an exact IP, the copy whose bytes equal the printed Code:
    ran."""
    sample = load_sample(image)
    loaded = Session(None).open_vmlinux(sample.path)
    for twin in sample.twins:
        other = next(t for t in sample.twins if t is not twin)
        offset = twin.return_offset - 5  # the call instruction: an instruction boundary
        printed = f"{NAME}+{offset:#x}/{twin.kallsyms_size:#x}"
        rip = twin.link_address + offset
        if loaded.image.read(rip - 42, 64) == loaded.image.read(
            other.link_address + offset - 42, 64
        ):
            pytest.skip(f"{image}: the two copies have identical bytes")
        log = (
            "BUG: kernel NULL pointer dereference, address: 0000000000000000\n"
            "Oops: 0000 [#1] SMP\n"
            "CPU: 0 PID: 1 Comm: cat Not tainted 6.1.0-sample #1\n"
            f"RIP: 0010:{printed}\n"
            f"{code_line(loaded, rip)}\n"
            "Call Trace:\n"
            " <TASK>\n"
            f" {sample.callee_frame}\n"
            " </TASK>\n"
        )
        decoder = Decoder(loaded)
        (report,) = list(decoder.decode_all(iter_reports(log.encode())))
        (frame,) = [f for f in report.ip_frames if f.frame.raw_text.strip().endswith(printed)]
        resolved = frame.resolved
        assert resolved is not None and not resolved.ambiguous, resolved
        assert resolved.symbol is not None and resolved.symbol.link_address == twin.link_address
        steps = [(e.kind, e.candidates_before, e.candidates_after) for e in resolved.evidence]
        assert (EvidenceKind.CODE_BYTES, 2, 1) in steps
        assert report.code is not None and report.code.match is not None
        assert report.code.match.is_match
