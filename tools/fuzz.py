#!/usr/bin/env python3
"""Mutation fuzzing of the code that reads user input, with a fixed seed.

Targets (each runs ``--count`` inputs, default 10,000):

``names``
    Random symbol names built from the suffix grammar's own tokens plus noise, fed to
    :func:`ltosyms.names.suffixes.parse_name`. A finding is an exception, a name that does
    not render back byte for byte, or an empty base for a non-empty name.
``oops``
    Real console logs (the corpus, else a built-in oops) with lines dropped, repeated, cut,
    spliced and bytes changed, fed to ``ltosyms.oops.parse.iter_reports`` (when that module
    exists). A finding is any exception that is not an ``LtosymsError``.
``elf:.symtab``, ``elf:.debug_info``, ``elf:.debug_line``, ``elf:headers`` (and
``elf:.debug_abbrev``, ``elf:.debug_aranges``, ``elf:.debug_rnglists``, ``elf:.debug_str``)
    The sample images of ``testdata/vmlinux-samples`` with bytes changed inside one section
    (``headers``: the ELF header or the section header table), then opened with
    ``open_image``, loaded into a ``SymbolTable``, looked up, and resolved with the image's
    DWARF resolver (``ltosyms.elf.debug_sections.dwarf_resolver``, when that exists: inline
    chains and compilation units), and a vmlinux's DWARF census taken (what ``diff`` reads).
    A finding is any exception that is not an ``LtosymsError``: the library promises a clean
    error or a result.

An input that runs longer than ``HANG_SECONDS`` is a finding too (a loop on damaged data).
Every input derives from ``(seed, target, index)`` alone, so ``--target T --index I`` replays
it with its traceback. Each finding is shrunk (patches or lines dropped while it still fails
the same way) and printed as the case to keep in ``tests/test_fuzz_regressions.py``.
Exit status: 0 when no target had a finding, 1 otherwise.

    python tools/fuzz.py                      # every target, 10,000 inputs each
    python tools/fuzz.py --target elf:.debug_info --count 50000 --jobs 2
    python tools/fuzz.py --target elf:.symtab --index 1234   # replay one input
"""

from __future__ import annotations

import argparse
import collections
import importlib
import importlib.util
import multiprocessing
import os
import random
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from ltosyms.elf.image import open_image  # noqa: E402
from ltosyms.elf.symtab import SymbolTable  # noqa: E402
from ltosyms.errors import LtosymsError  # noqa: E402
from ltosyms.names.suffixes import parse_name  # noqa: E402

SAMPLES = PROJECT / "testdata" / "vmlinux-samples"
DEFAULT_SEED = 20240806
HANG_SECONDS = 5  # a sample image input takes well under 0.1 s
# The three sections every lookup reads, the headers that locate them, and the DWARF sections
# a lookup reaches through them.
ELF_REGIONS = (
    *(".symtab", ".debug_info", ".debug_line", "headers"),
    *(".debug_abbrev", ".debug_aranges", ".debug_rnglists", ".debug_str"),
)
TARGETS = ("names", "oops", *(f"elf:{region}" for region in ELF_REGIONS))


class Hang(BaseException):
    """Raised by the alarm inside a stuck input; a BaseException so that no ``except
    Exception`` in the code under test swallows it."""


class PropertyViolated(AssertionError):
    """A result that breaks a promise of the API (not an exception of the code under test)."""


def _on_alarm(_signum: int, _frame: object) -> None:
    raise Hang(f"no result after {HANG_SECONDS} s")


@contextmanager
def _deadline() -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class Failure:
    kind: str  # exception type name
    where: str  # innermost frame of the code under test: file:line function
    detail: str  # first line of the message


def _failure(error: BaseException) -> Failure:
    frames = list(traceback.extract_tb(error.__traceback__))
    if isinstance(error, Hang):
        frames = frames[:-1]  # the alarm handler; the loop is the frame before it
    frame = frames[-1] if frames else None
    where = f"{Path(frame.filename).name}:{frame.lineno} {frame.name}" if frame else "?"
    text = str(error).strip()
    return Failure(type(error).__name__, where, text.splitlines()[0][:200] if text else "")


def attempt(check: Callable[[], int | None]) -> str | Failure:
    """Run ``check``: "accepted", "partial" (a result, some lookups ended in a clean error),
    "rejected" (a clean LtosymsError for the whole input) or the Failure."""
    try:
        with _deadline():
            clean_errors = check()
    except LtosymsError:
        return "rejected"
    except (Exception, Hang) as error:  # catching everything is the point
        return _failure(error)
    return "partial" if clean_errors else "accepted"


def _rng(seed: int, target: str, index: int) -> random.Random:
    return random.Random(f"{seed}:{target}:{index}")


# -- names -------------------------------------------------------------------------------------

_NAME_TOKENS: tuple[str, ...] = (
    *("foo", "NF_HOOK", "try_to_wake_up", "__schedule", "name_show", "head64", "c", "_", "__"),
    *(".constprop", ".isra", ".part", ".cold", ".localalias", ".lto_priv", ".llvm"),
    *(".specialized", ".argelim", ".__uniq", ".cfi", ".cfi_jt", "constprop", "llvm"),
    *(".0", ".1", ".12", ".00", ".14717294184349261171", ".552cf5a6", "0", "9"),
    *(".", "..", "$x", ".L", "__pfx_", "__cfi_", "+0x10/0x40"),
    *("\u00e9", "\u0661", "\n", " ", "\x00", ""),
)


def names_case(seed: int, index: int) -> str:
    rng = _rng(seed, "names", index)
    if rng.random() < 0.1:
        alphabet = "abc._0123456789lvmcoldpart$ \u0661"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
    return "".join(rng.choice(_NAME_TOKENS) for _ in range(rng.randint(0, 8)))


def check_name(name: str) -> None:
    parsed = parse_name(name)
    if parsed.render() != name or parsed.raw != name:
        raise PropertyViolated(f"render() gives {parsed.render()!r}")
    if name and not parsed.base:
        raise PropertyViolated("empty base for a non-empty name")
    if any(not part.text.startswith(".") for part in parsed.suffixes):
        raise PropertyViolated("a suffix part without its dot")


# -- oops --------------------------------------------------------------------------------------

_BUILTIN_LOG = b"""\
[   12.345678] BUG: kernel NULL pointer dereference, address: 0000000000000008
[   12.345680] #PF: supervisor read access in kernel mode
[   12.345690] CPU: 1 PID: 42 Comm: sh Not tainted 6.1.0-57-cloud-amd64 #1  Debian 6.1.158-1
[   12.345700] RIP: 0010:name_show+0x10/0x40
[   12.345710] Code: 48 89 e5 41 54 53 48 8b 47 08 <48> 8b 40 08 5b 41 5c 5d c3 cc cc cc cc
[   12.345720] RSP: 0018:ffffc90000173e20 EFLAGS: 00010246
[   12.345730] Call Trace:
[   12.345731]  <TASK>
[   12.345732]  dev_attr_show+0x19/0x40
[   12.345733]  ? sysfs_kf_seq_show+0xa6/0x100
[   12.345734]  seq_read_iter+0x11f/0x450 [zram 0123456789abcdef0123456789abcdef01234567]
[   12.345735]  vfs_read+0x1b1/0x2f0
[   12.345736]  do_syscall_64+0x5b/0xc0
[   12.345737]  entry_SYSCALL_64_after_hwframe+0x64/0xce
[   12.345738]  </TASK>
[   12.345739] ---[ end trace 0000000000000000 ]---
"""

# Tokens the oops grammar reacts to, and bytes that break naive text handling (NUL, invalid
# UTF-8, U+2028 which str.splitlines() treats as a line end, CR).
_OOPS_TOKENS: tuple[bytes, ...] = (
    *(b"Call Trace:", b"<IRQ>", b"</IRQ>", b"<TASK>", b"</TASK>", b" ? ", b"RIP: 0010:"),
    *(b"pc : ", b"lr : ", b"Code: ", b"<48>", b"(8b)", b"+0x", b"/0x", b"0x", b"]", b" [mod "),
    *(b"[<ffffffff81000000>] ", b"BUG: ", b"WARNING: CPU: 0 PID: 1 at ", b"Oops: "),
    *(b"---[ end trace", b"[   1.000000] ", b"<4>", b"[  T123] ", b"ffffffffffffffff"),
    *(b"\t", b"\r\n", b"\n", b"\r", b"\x00", b"\xff\xfe", "\u2028".encode()),
)


def _oops_seeds() -> list[bytes]:
    root = Path(os.environ.get("LTOSYMS_CORPUS", PROJECT.parent / "shared" / "corpus"))
    logs: list[Path] = []
    if (root / "README.md").is_file():
        logs += sorted(root.glob("debian-*/logs/*.log"))
        logs += sorted(root.glob("kernels/*/console*.log"))
        reports = sorted((root / "syzkaller" / "report").glob("*"))
        logs += [path for path in reports[::25] if path.is_file()]
    seeds = [_BUILTIN_LOG]
    for path in logs:
        # A window of at most 200 lines keeps 10,000 inputs quick.
        seeds.append(b"".join(path.read_bytes().splitlines(keepends=True)[:200]))
    return seeds


def _mutate_text(rng: random.Random, data: bytes) -> bytes:
    lines = data.splitlines(keepends=True) or [b""]
    for _ in range(rng.randint(1, 6)):
        choice = rng.randrange(8)
        position = rng.randrange(len(lines))
        line = lines[position]
        if choice == 0 and len(lines) > 1:
            del lines[position]
        elif choice == 1:
            lines.insert(position, lines[rng.randrange(len(lines))])
        elif choice == 2:
            lines[position] = line[: rng.randint(0, len(line))]
        elif choice == 3:
            changed = bytearray(line)
            for _ in range(rng.randint(1, 4)):
                if changed:
                    changed[rng.randrange(len(changed))] = rng.randrange(256)
            lines[position] = bytes(changed)
        elif choice == 4:
            cut = rng.randint(0, len(line))
            lines[position] = line[:cut] + rng.choice(_OOPS_TOKENS) + line[cut:]
        elif choice == 5:
            lines.insert(position, bytes(rng.randrange(256) for _ in range(rng.randint(1, 80))))
        elif choice == 6:
            start = rng.randrange(len(lines))
            lines[position:position] = lines[start : start + rng.randint(1, 20)]
        else:
            lines = lines[: rng.randint(1, len(lines))]
    return b"".join(lines)


_oops_seed_cache: list[bytes] = []


def oops_case(seed: int, index: int) -> bytes:
    if not _oops_seed_cache:
        _oops_seed_cache.extend(_oops_seeds())
    rng = _rng(seed, "oops", index)
    return _mutate_text(rng, rng.choice(_oops_seed_cache))


def oops_parser() -> Callable[[bytes], Any] | None:
    """``ltosyms.oops.parse.iter_reports`` if the parser exists in this tree."""
    if importlib.util.find_spec("ltosyms.oops") is None:
        return None
    if importlib.util.find_spec("ltosyms.oops.parse") is None:
        return None
    parser: Callable[[bytes], Any] | None = getattr(
        importlib.import_module("ltosyms.oops.parse"), "iter_reports", None
    )
    return parser


def check_oops(data: bytes) -> None:
    parser = oops_parser()
    assert parser is not None
    for _report in parser(data):
        pass


def _shrink_lines(data: bytes) -> Iterator[bytes]:
    """Smaller logs: chunks of lines removed, large chunks first."""
    lines = data.splitlines(keepends=True)
    size = max(len(lines) // 2, 1)
    while size >= 1:
        for start in range(0, len(lines), size):
            yield b"".join(lines[:start] + lines[start + size :])
        size //= 2


# -- ELF ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    regions: dict[str, tuple[int, int]]  # region -> (file offset, size)
    probes: tuple[int, ...]  # link addresses to look up: function starts and middles
    names: tuple[str, ...]


@dataclass(frozen=True)
class ElfCase:
    sample: str
    region: str  # a section name, "headers" (ELF header) or "section-headers"
    patches: tuple[tuple[int, int], ...]  # (offset in region, new byte; negative: -1-bitmask)

    def literal(self) -> str:
        return f"({self.sample!r}, {self.region!r}, {list(self.patches)!r})"


def region_offsets(path: Path) -> dict[str, tuple[int, int]]:
    """File offset and size of every region the ELF targets change, in a pristine image."""
    # pyelftools (a test dependency) reads the header fields ltosyms' own reader keeps to itself.
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as file:
        header = ELFFile(file).header
    with open_image(path) as image:
        regions = {
            "headers": (0, int(header["e_ehsize"])),
            "section-headers": (
                int(header["e_shoff"]),
                int(header["e_shnum"]) * int(header["e_shentsize"]),
            ),
        }
        for section in image.sections:
            if section.size and section.has_bits and section.name:
                regions.setdefault(section.name, (section.file_offset, section.size))
    return regions


def _load_samples() -> dict[str, Sample]:
    samples = {}
    for path in sorted(SAMPLES.glob("*")):
        if not path.is_file() or not (path.name.startswith("vmlinux-") or path.suffix == ".ko"):
            continue
        with open_image(path) as image:
            table = SymbolTable(image)
            functions = [s for s in table if s.is_function and s.elf_size][:24]
        probes = tuple(
            address
            for s in functions
            for address in (s.link_address, s.link_address + s.elf_size // 2)
        )
        samples[path.name] = Sample(
            path.name,
            path.read_bytes(),
            region_offsets(path),
            probes,
            tuple(s.name for s in functions),
        )
    return samples


def dwarf_resolver() -> Any:
    """``ltosyms.elf.debug_sections.dwarf_resolver`` (image -> resolver) if this tree has it."""
    if importlib.util.find_spec("ltosyms.elf.debug_sections") is None:
        return None
    return getattr(importlib.import_module("ltosyms.elf.debug_sections"), "dwarf_resolver", None)


def dwarf_census() -> Any:
    """image -> the DWARF census (what ``diff`` reads), if this tree has it."""
    if importlib.util.find_spec("ltosyms.elf.debug_sections") is None:
        return None
    dwarf_sections = importlib.import_module("ltosyms.elf.debug_sections").dwarf_sections
    take_census = importlib.import_module("ltosyms.dwarf").take_census
    return lambda image: take_census(dwarf_sections(image), workers=1)


def apply_patches(data: bytes, start: int, patches: tuple[tuple[int, int], ...]) -> bytes:
    """``data`` with ``patches`` applied from ``start``; a negative value ``-1-m`` flips the
    bits of mask ``m``."""
    mutated = bytearray(data)
    for offset, value in patches:
        if value < 0:
            mutated[start + offset] ^= -1 - value
        else:
            mutated[start + offset] = value
    return bytes(mutated)


def exercise_image(path: Path, probes: tuple[int, ...], names: tuple[str, ...]) -> int:
    """What the commands do with an image. Raises nothing but LtosymsError if the library
    keeps its promise; returns how many DWARF lookups ended in a clean error."""
    with open_image(path) as image:
        table = SymbolTable(image)
        for symbol in table:
            _ = (symbol.kallsyms_size, symbol.base_name)
        for address in probes:
            table.lookup(address)
            table.function_containing(address)
            table.symbols_at(address)
            with suppress(LtosymsError):
                image.read(address, 16)
        for name in names:
            table.by_name(name)
            table.by_base_name(parse_name(name).base)
        resolver_for = dwarf_resolver()
        if resolver_for is not None and image.has_dwarf():
            resolver = resolver_for(image)
            clean_errors = 0
            for address in probes:
                try:
                    resolver.locations(address)
                except LtosymsError:
                    clean_errors += 1
                try:
                    resolver.compile_unit(address)
                except LtosymsError:
                    clean_errors += 1
            census = dwarf_census()
            if census is not None and not image.is_module:
                try:
                    census(image)
                except LtosymsError:
                    clean_errors += 1
            return clean_errors
    return 0


_INTERESTING_BYTES = (0, 1, 0x7F, 0x80, 0xFF)
_INTERESTING_WORDS = (0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF)


def _patches(rng: random.Random, size: int) -> tuple[tuple[int, int], ...]:
    patches: list[tuple[int, int]] = []
    for _ in range(rng.randint(1, 8)):
        offset = rng.randrange(size)
        choice = rng.randrange(4)
        if choice == 0:
            patches.append((offset, -1 - (1 << rng.randrange(8))))  # one bit flipped
        elif choice == 1:
            patches.append((offset, rng.randrange(256)))
        elif choice == 2:
            patches.append((offset, rng.choice(_INTERESTING_BYTES)))
        else:
            word = rng.choice(_INTERESTING_WORDS).to_bytes(8, "little")[: rng.choice((2, 4, 8))]
            patches += [(offset + i, b) for i, b in enumerate(word) if offset + i < size]
    return tuple(patches)


_samples: dict[str, Sample] = {}
_scratch: list[Path] = []


def _elf_setup() -> tuple[dict[str, Sample], Path]:
    if not _samples:
        _samples.update(_load_samples())
    if not _scratch:
        shm = Path("/dev/shm")
        directory = tempfile.mkdtemp(prefix="ltosyms-fuzz-", dir=shm if shm.is_dir() else None)
        _scratch.append(Path(directory))
    return _samples, _scratch[0]


def elf_case(seed: int, region: str, index: int) -> ElfCase:
    samples, _ = _elf_setup()
    rng = _rng(seed, f"elf:{region}", index)
    sample = rng.choice([s for s in samples.values() if region in s.regions or region == "headers"])
    if region == "headers":
        region = rng.choice(("headers", "section-headers"))
    size = sample.regions[region][1]
    return ElfCase(sample.name, region, _patches(rng, size))


def check_elf(case: ElfCase) -> int:
    samples, scratch = _elf_setup()
    sample = samples[case.sample]
    path = scratch / f"image-{os.getpid()}"
    path.write_bytes(apply_patches(sample.data, sample.regions[case.region][0], case.patches))
    return exercise_image(path, sample.probes, sample.names)


def _shrink_patches(case: ElfCase) -> Iterator[ElfCase]:
    for position in range(len(case.patches)):
        yield replace(case, patches=case.patches[:position] + case.patches[position + 1 :])


# -- targets and driver ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    make: Callable[[int, int], Any]  # (seed, index) -> case
    check: Callable[[Any], int | None]
    literal: Callable[[Any], str]
    shrink: Callable[[Any], Iterator[Any]]


def target(name: str) -> Target:
    if name == "names":
        return Target(name, names_case, check_name, repr, lambda case: iter(()))
    if name == "oops":
        return Target(name, oops_case, check_oops, repr, _shrink_lines)
    region = name.split(":", 1)[1]
    return Target(
        name,
        lambda seed, index: elf_case(seed, region, index),
        check_elf,
        lambda case: case.literal(),
        _shrink_patches,
    )


def shrink(spec: Target, case: Any, failure: Failure) -> Any:
    """Drop parts of ``case`` while it still fails the same way (same exception, same place)."""
    progress = True
    while progress:
        progress = False
        for smaller in spec.shrink(case):
            outcome = attempt(partial(spec.check, smaller))
            if isinstance(outcome, Failure) and (outcome.kind, outcome.where) == (
                failure.kind,
                failure.where,
            ):
                case, progress = smaller, True
                break
    return case


@dataclass(frozen=True)
class Finding:
    index: int
    failure: Failure


def _run_chunk(job: tuple[str, int, int, int]) -> tuple[collections.Counter[str], list[Finding]]:
    name, seed, first, last = job
    spec = target(name)
    counts: collections.Counter[str] = collections.Counter()
    findings = []
    for index in range(first, last):
        case = spec.make(seed, index)
        outcome = attempt(partial(spec.check, case))
        if isinstance(outcome, Failure):
            counts["unexpected"] += 1
            findings.append(Finding(index, outcome))
        else:
            counts[outcome] += 1
    return counts, findings


def run_target(name: str, seed: int, count: int, jobs: int) -> int:
    """Run and report one target; the number of unexpected outcomes."""
    started = time.monotonic()
    work = [(name, seed, i, min(i + 250, count)) for i in range(0, count, 250)]
    counts: collections.Counter[str] = collections.Counter()
    findings: list[Finding] = []
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            for chunk_counts, chunk_findings in pool.imap(_run_chunk, work):
                counts.update(chunk_counts)
                findings += chunk_findings
    else:
        for job in work:
            chunk_counts, chunk_findings = _run_chunk(job)
            counts.update(chunk_counts)
            findings += chunk_findings
    inputs = sum(counts.values())
    print(
        f"{name:<18} {inputs:>8} {counts['accepted']:>9} {counts['partial']:>8} "
        f"{counts['rejected']:>9} "
        f"{counts['unexpected']:>10} {time.monotonic() - started:>7.1f}",
        flush=True,
    )
    groups: dict[tuple[str, str], list[Finding]] = collections.defaultdict(list)
    for finding in findings:
        groups[(finding.failure.kind, finding.failure.where)].append(finding)
    spec = target(name)
    for (kind, where), group in sorted(groups.items(), key=lambda item: -len(item[1])):
        first = group[0]
        smallest = shrink(spec, spec.make(seed, first.index), first.failure)
        print(f"    {len(group):>6} x {kind} at {where}: {first.failure.detail}")
        print(f"           replay: --target {name} --index {first.index}")
        print(f"           regression case: {spec.literal(smallest)}", flush=True)
    return counts["unexpected"]


def replay(name: str, seed: int, index: int) -> int:
    spec = target(name)
    case = spec.make(seed, index)
    print(f"{name} #{index}: {spec.literal(case)[:2000]}")
    try:
        with _deadline():
            clean_errors = spec.check(case)
    except LtosymsError as error:
        print(f"  clean error: {error}")
    except (Exception, Hang):  # showing it is the point
        traceback.print_exc()
        return 1
    else:
        print("  accepted (partly)" if clean_errors else "  accepted")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--target", action="append", choices=TARGETS, help="default: all")
    parser.add_argument("--count", type=int, default=10_000, help="inputs per target")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--index", type=int, help="replay this one input, with its traceback")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    options = parser.parse_args(argv)
    names = options.target or list(TARGETS)
    if options.index is not None:
        return max(replay(name, options.seed, options.index) for name in names)
    print(f"seed {options.seed}, {options.count} inputs per target, {options.jobs} jobs")
    if dwarf_resolver() is None:
        print(
            "note: ltosyms.elf.debug_sections.dwarf_resolver does not exist; DWARF is not exercised"
        )
    print(
        f"{'target':<18} {'inputs':>8} {'accepted':>9} {'partial':>8} {'rejected':>9} "
        f"{'unexpected':>10} seconds"
    )
    unexpected = 0
    for name in names:
        if name == "oops" and oops_parser() is None:
            print(f"{name:<18} skipped: ltosyms.oops.parse.iter_reports does not exist")
            continue
        unexpected += run_target(name, options.seed, options.count, options.jobs)
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
