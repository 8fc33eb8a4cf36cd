"""Which ELF symbol a printed ``name+off/size`` frame means (DOMAIN §2, §4).

The printed name may not be in the ELF at all (clang LTO ``foo.llvm.N`` printed as ``foo``),
may name several statics (``name_show`` x6 in a Debian vmlinux), or, on old LTO kernels, may
hide ``.cold``/``.part`` parts. Candidates are narrowed in this order, each step recorded as
evidence, never silently:

1. exact ELF name; else names that print as ``name`` under the kernel's cleanup rule;
2. the printed size against each candidate's kallsyms size;
3. machine code: for a return address, a call instruction must end exactly at
   ``candidate + offset``; for an exact IP, the ``Code:`` bytes must equal the image's bytes;
4. (across frames, in :mod:`ltosyms.decode.decode`) the call's target against the callee;
   the other way, a resolved caller's direct call names the copy an ambiguous callee is.

When evidence cannot separate the copies left, all of them are reported as ambiguous.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ltosyms.elf.symtab import Symbol, SymbolTable
from ltosyms.names.kallsyms import CleanupRule, printed_name
from ltosyms.names.suffixes import parse_name


class EvidenceKind(enum.Enum):
    EXACT_NAME = "exact-name"
    CLEANUP_NAME = "cleanup-name"  # matched only after the kernel's name cleanup
    BASE_NAME = "base-name"  # matched by base name only: a last resort, says the vmlinux is odd
    KALLSYMS_SIZE = "kallsyms-size"
    CALL_AT_RETURN = "call-at-return"
    CALL_TARGET = "call-target"
    CODE_BYTES = "code-bytes"


@dataclass(frozen=True, slots=True)
class Evidence:
    kind: EvidenceKind
    detail: str
    candidates_before: int
    candidates_after: int


@dataclass(frozen=True, slots=True)
class Candidate:
    symbol: Symbol
    link_address: int  # symbol + printed offset: the return address or IP, link time


@dataclass(frozen=True, slots=True)
class NameResolution:
    candidates: tuple[Candidate, ...]  # what is left after the evidence
    evidence: tuple[Evidence, ...]

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1


# A filter judges one candidate: True keeps it, False drops it, None means "cannot tell".
CandidateTest = Callable[[Candidate], bool | None]


def _narrow(
    candidates: list[Candidate],
    evidence: list[Evidence],
    kind: EvidenceKind,
    test: CandidateTest,
    detail: str,
) -> list[Candidate]:
    """Keep the candidates ``test`` accepts, unless it would reject all of them.

    A test that rejects every candidate is itself evidence (wrong vmlinux, or a ``? `` slot
    that is not a return address), recorded as such, but it does not empty the list.
    """
    verdicts = [test(c) for c in candidates]
    if all(v is None for v in verdicts):
        return candidates
    kept = [c for c, v in zip(candidates, verdicts, strict=True) if v is not False]
    if not kept:
        evidence.append(Evidence(kind, f"{detail}: no candidate passes", len(candidates), 0))
        return candidates
    if len(kept) < len(candidates) or len(candidates) == 1:
        evidence.append(Evidence(kind, detail, len(candidates), len(kept)))
    return kept


def name_candidates(
    symbols: SymbolTable, name: str, rule: CleanupRule
) -> tuple[list[Symbol], Evidence]:
    """Symbols that an oops would print as ``name`` (step 1)."""
    exact = [s for s in symbols.by_name(name) if s.kallsyms_size is not None]
    by_base = [
        s for s in symbols.by_base_name(parse_name(name).base) if s.kallsyms_size is not None
    ]
    cleaned = [s for s in by_base if s.name != name and printed_name(s.name, rule) == name]
    if exact or cleaned:
        found = exact + cleaned
        kind = EvidenceKind.EXACT_NAME if not cleaned else EvidenceKind.CLEANUP_NAME
        names = sorted({s.name for s in found})
        detail = f"{name} -> {', '.join(names[:6])}{' ...' if len(names) > 6 else ''}"
        return found, Evidence(kind, detail, 0, len(found))
    if by_base:
        names = sorted({s.name for s in by_base})
        detail = f"no ELF name prints as {name}; same base name: {', '.join(names[:6])}"
        return by_base, Evidence(EvidenceKind.BASE_NAME, detail, 0, len(by_base))
    return [], Evidence(EvidenceKind.EXACT_NAME, f"no symbol named {name}", 0, 0)


def resolve_name(
    symbols: SymbolTable,
    name: str,
    offset: int,
    size: int | None,
    rule: CleanupRule,
    machine_tests: Sequence[tuple[EvidenceKind, str, CandidateTest]] = (),
) -> NameResolution:
    """Narrow ``name+offset/size`` to ELF symbols (steps 1-3 of the module docstring)."""
    found, first = name_candidates(symbols, name, rule)
    evidence = [first]
    candidates = [Candidate(s, s.link_address + offset) for s in found]
    if not candidates:
        return NameResolution((), tuple(evidence))
    if size is not None:
        candidates = _narrow(
            candidates,
            evidence,
            EvidenceKind.KALLSYMS_SIZE,
            lambda c: c.symbol.kallsyms_size == size,
            f"printed size {size:#x}",
        )
    for kind, detail, test in machine_tests:
        if len(candidates) == 1:
            break
        candidates = _narrow(candidates, evidence, kind, test, detail)
    # Aliases (several names at one address) are one piece of code, not an ambiguity.
    unique_code: dict[int, Candidate] = {}
    for candidate in candidates:
        unique_code.setdefault(candidate.symbol.link_address, candidate)
    return NameResolution(tuple(unique_code.values()), tuple(evidence))


def narrow_further(
    resolution: NameResolution, kind: EvidenceKind, detail: str, test: CandidateTest
) -> NameResolution:
    """Apply one more test (the cross-frame call-target check) to a resolution."""
    evidence = list(resolution.evidence)
    candidates = _narrow(list(resolution.candidates), evidence, kind, test, detail)
    return NameResolution(tuple(candidates), tuple(evidence))
