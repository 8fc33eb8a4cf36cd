"""How the frames of the synthesized suites resolve, per kernel and naming style.

Each suite of ``tests/data/synth`` (written by ``tools/synth_traces.py``) holds frames printed
the way one naming era prints them, with the ELF symbol each frame means and the copies the
evidence (name under any era, printed size, a call at the return address, call targets between
adjacent frames) cannot reject. This decodes every suite log (``decode``) and, frame by frame
without the trace around it, asks ``symbolize`` (``-R`` for return addresses), then counts per
kernel and style:

* resolved: the one symbol the evidence leaves, and it is the frame's;
* ambiguous: several copies listed, exactly the ones the evidence leaves;
* unresolved: no answer;
* wrong: another symbol than the frame's, or an ambiguity listing other copies;
* guessed: the frame's symbol although the evidence leaves several (a silent pick).

Usage::

    python tools/era_accuracy.py [SUITE.json ...]   (default: every suite of tests/data/synth)

Only uses what ``ltosyms`` has offered since before the naming eras (``Decoder``,
``symbolize``; the vmlinux opened as each version opens it), so ``PYTHONPATH=<an older
checkout>`` measures that version on the same suites.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from ltosyms.decode.decode import Decoder
from ltosyms.decode.symbolize import parse_query, symbolize
from ltosyms.errors import LtosymsError
from ltosyms.oops.parse import iter_reports
from ltosyms.oops.records import FrameRole

PROJECT = Path(__file__).resolve().parent.parent
SYNTH = PROJECT / "tests" / "data" / "synth"
CORPUS = Path(os.environ.get("LTOSYMS_CORPUS", PROJECT.parent / "shared" / "corpus"))
RETURN_KINDS = ("suffixed", "caller", "dup-caller", "llvm")
VERDICTS = ("resolved", "ambiguous", "unresolved", "wrong", "guessed")


def vmlinux_of(kernel: str) -> Path:
    if kernel == "clang-lto-sample":
        return PROJECT / "testdata" / "vmlinux-samples" / "vmlinux-clang-lto"
    script = (
        [str(CORPUS / "debian-6.1.0-57-cloud-amd64" / "get-vmlinux.sh")]
        if kernel == "debian"
        else [str(CORPUS / "kernels" / "get-vmlinux.sh"), kernel]
    )
    output = subprocess.run(["sh", *script], capture_output=True, text=True, check=True).stdout
    return Path(output.strip().splitlines()[-1])


def verdict(
    symbol_address: int | None, listed: set[int], expected: int, survivors: set[int]
) -> str:
    if symbol_address is not None:
        if symbol_address != expected:
            return "wrong"
        return "resolved" if len(survivors) <= 1 else "guessed"
    if not listed:
        return "unresolved"
    return "ambiguous" if listed == survivors else "wrong"


def _decoder(vmlinux: Path) -> Decoder:
    try:
        from ltosyms.context import Session
    except ImportError:  # before ltosyms.context: the decoder took the loaded vmlinux
        from ltosyms.elf.kernel import load_vmlinux

        return Decoder(load_vmlinux(vmlinux))  # type: ignore[arg-type]
    return Decoder(Session(None).open_vmlinux(vmlinux))


def measure(path: Path) -> dict[tuple[str, str], Counter[str]]:
    raw = json.loads(path.read_text())
    fields = raw["frame_fields"]
    base = int(raw["address_base"], 16)
    rows = [dict(zip(fields, row, strict=True)) for row in raw["frames"]]
    decoder = _decoder(vmlinux_of(raw["kernel"]))
    by_line = {}
    log = "\n".join(raw["log"]) + "\n"
    for report in decoder.decode_all(iter_reports(log.encode())):
        for frame in report.iter_frames():
            by_line.setdefault(frame.frame.line, frame)
    lines = raw["log"]
    counts: dict[tuple[str, str], Counter[str]] = {}
    for row in rows:
        if row["kind"] not in RETURN_KINDS:
            continue
        style = row.get("style", "llvm-cut" if row["kind"] == "llvm" else "exact")
        expected = base + int(row["address"], 16)
        candidates = [base + int(a, 16) for a in row["candidates"]]
        survivors = {candidates[i] for i in row["survivors"]} if candidates else {expected}
        resolved = by_line[row["line"]].resolved
        assert resolved is not None
        decoded = verdict(
            resolved.symbol.link_address if resolved.symbol is not None else None,
            {c.symbol.link_address for c in resolved.candidates} if resolved.ambiguous else set(),
            expected,
            survivors,
        )
        counts.setdefault((f"decode {row['kind']}", style), Counter())[decoded] += 1
        # The same frame alone, as `symbolize -R` gets it: no neighbours, no call targets.
        text = lines[row["line"] - 1].strip().removeprefix("? ")
        try:
            alone = symbolize(decoder, parse_query(text, FrameRole.RETURN_ADDRESS)).resolved
            symbolized = verdict(
                alone.symbol.link_address if alone.symbol is not None else None,
                {c.symbol.link_address for c in alone.candidates} if alone.ambiguous else set(),
                expected,
                survivors_alone(row, base, expected),
            )
        except LtosymsError:
            symbolized = "unresolved"
        counts.setdefault((f"symbolize-R {row['kind']}", style), Counter())[symbolized] += 1
    return counts


def survivors_alone(row: dict[str, object], base: int, expected: int) -> set[int]:
    """What the evidence of the frame alone leaves (name, size, call at the return address):
    the suite's ``survivors`` also use the neighbouring frames, so an ambiguity they settle
    may stay for ``symbolize``; the alone-survivors are in ``alone`` when the suite has them."""
    key = "alone" if "alone" in row else "survivors"
    candidates = [base + int(a, 16) for a in row["candidates"]]  # type: ignore[attr-defined]
    if not candidates:
        return {expected}
    return {candidates[i] for i in row[key]}  # type: ignore[attr-defined]


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or sorted(SYNTH.glob("*.json"))
    print(f"{'kernel':<22}{'how':<24}{'style':<17}" + "".join(f"{v:>11}" for v in VERDICTS))
    for path in paths:
        for (how, style), counter in sorted(measure(path).items()):
            print(
                f"{path.stem:<22}{how:<24}{style:<17}"
                + "".join(f"{counter[v]:>11}" for v in VERDICTS)
            )


if __name__ == "__main__":
    main()
