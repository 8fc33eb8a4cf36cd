"""Which ELF symbol a printed ``name+off/size`` frame means.

The printed name may not be in the ELF at all (clang LTO ``foo.llvm.N`` printed as ``foo``),
may name several statics (``name_show`` x6 in a Debian vmlinux), or, on LTO kernels of the
first-dot era, may hide ``.cold``/``.part``/``.lto_priv.N`` parts or full LTO's ``.N``. Which
era printed the log is a guess (a stable backport, a pasted trace without a version), so
candidates are narrowed in this order, each step recorded as evidence, never silently:

1. the exact ELF name and every ELF name that some naming era
   (:data:`ltosyms.names.eras.CLEANUP_RULES`) prints as ``name``; the build's own era only
   orders them;
2. the printed size against each candidate's kallsyms size: a size that fits no candidate
   leaves the frame unresolved, with that reason (the vmlinux is another build);
3. machine code: for a return address, a call instruction must end exactly at
   ``candidate + offset``; for an exact IP, the ``Code:`` bytes must equal the image's bytes;
4. (across frames, in :mod:`ltosyms.decode.decode`) the call's target against the callee;
   the other way, a resolved caller's direct call names the copy an ambiguous callee is.

When evidence cannot separate the copies left, all of them are reported as ambiguous; a
machine-code test that rejects every copy says nothing about which one it is and leaves them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ltosyms.elf.symtab import Symbol, SymbolTable
from ltosyms.names.eras import CleanupRule, printed_name
from ltosyms.names.suffixes import parse_name


class EvidenceKind(enum.Enum):
    EXACT_NAME = "exact-name"
    CLEANUP_NAME = "cleanup-name"  # matched after some era's name cleanup
    BASE_NAME = "base-name"  # matched by base name only: a last resort, says the vmlinux is odd
    KALLSYMS_SIZE = "kallsyms-size"
    CALL_AT_RETURN = "call-at-return"
    CALL_TARGET = "call-target"
    CODE_BYTES = "code-bytes"
    INSTRUCTION_START = "instruction-start"  # an exact IP starts an instruction of the copy


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """One step that narrowed a printed name's candidates, and how many it left."""

    kind: EvidenceKind
    detail: str
    candidates_before: int
    candidates_after: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """A symbol a printed ``name+offset/size`` may be, and the address it then means."""

    symbol: Symbol
    link_address: int  # symbol + printed offset: the return address or IP, link time


@dataclass(frozen=True, slots=True, kw_only=True)
class NameResolution:
    """The candidates left for a printed name, with the evidence that left them."""

    candidates: tuple[Candidate, ...]  # what is left after the evidence
    evidence: tuple[Evidence, ...]

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1


WRAPPED_SIZE = 1 << 63
_CODE_TYPES = frozenset("tTwW")  # nm letters of code (W: weak, functions in practice)

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

    A machine-code test that rejects every candidate is itself evidence (a ``? `` slot that
    is not a return address, boot-patched code, another build), recorded as such; it tells
    nothing about which candidate the frame is, so the list stays as it was.
    """
    verdicts = [test(c) for c in candidates]
    if all(v is None for v in verdicts):
        return candidates
    kept = [c for c, v in zip(candidates, verdicts, strict=True) if v is not False]
    if not kept:
        evidence.append(
            Evidence(
                kind=kind,
                detail=f"{detail}: no candidate passes",
                candidates_before=len(candidates),
                candidates_after=0,
            )
        )
        return candidates
    if len(kept) < len(candidates) or len(candidates) == 1:
        evidence.append(
            Evidence(
                kind=kind,
                detail=detail,
                candidates_before=len(candidates),
                candidates_after=len(kept),
            )
        )
    return kept


def name_candidates(
    symbols: SymbolTable, name: str, rules: Sequence[CleanupRule]
) -> tuple[list[Symbol], Evidence]:
    """Symbols that an oops of some era would print as ``name`` (step 1): the exact name
    first, then the names ``rules`` cut to ``name``, in the order of ``rules``."""
    named, continued = symbols.by_name_or_continued(name, ".$")
    exact = [s for s in named if s.kallsyms_size is not None]
    # Every era cuts at a '.' (or, CFI, at a '$'): the names it cuts to `name` start so. Only
    # code: a function's frame never means clang's function-local static `kthread.param` or
    # gcc's `__already_done.3`, which a first-dot cut also prints as the function's name.
    longer = [
        s
        for symbols_continued in continued
        for s in symbols_continued
        if s.kallsyms_size is not None and s.nm_type in _CODE_TYPES
    ]
    by_era: list[tuple[Symbol, str]] = []
    for rule in rules:
        by_era += [(s, rule.name) for s in longer if printed_name(s.name, rule) == name]
    cleaned: dict[tuple[str, int], tuple[Symbol, list[str]]] = {}
    for symbol, era in by_era:
        cleaned.setdefault((symbol.name, symbol.link_address), (symbol, []))[1].append(era)
    if exact or cleaned:
        found = exact + [symbol for symbol, _ in cleaned.values()]
        kind = EvidenceKind.EXACT_NAME if not cleaned else EvidenceKind.CLEANUP_NAME
        described = sorted({s.name for s in exact}) + sorted(
            {f"{s.name} ({', '.join(eras)})" for s, eras in cleaned.values()}
        )
        more = " ..." if len(described) > 6 else ""
        detail = f"{name} -> {', '.join(described[:6])}{more}"
        return found, Evidence(
            kind=kind, detail=detail, candidates_before=0, candidates_after=len(found)
        )
    by_base = [
        s for s in symbols.by_base_name(parse_name(name).base) if s.kallsyms_size is not None
    ]
    if by_base:
        names = sorted({s.name for s in by_base})
        detail = f"no ELF name prints as {name}; same base name: {', '.join(names[:6])}"
        return by_base, Evidence(
            kind=EvidenceKind.BASE_NAME,
            detail=detail,
            candidates_before=0,
            candidates_after=len(by_base),
        )
    return [], Evidence(
        kind=EvidenceKind.EXACT_NAME,
        detail=f"no symbol named {name}",
        candidates_before=0,
        candidates_after=0,
    )


def resolve_name(
    symbols: SymbolTable,
    name: str,
    offset: int,
    size: int | None,
    rules: Sequence[CleanupRule],
    machine_tests: Sequence[tuple[EvidenceKind, str, CandidateTest]] = (),
) -> NameResolution:
    """Narrow ``name+offset/size`` to ELF symbols (steps 1-3 of the module docstring)."""
    found, first = name_candidates(symbols, name, rules)
    evidence = [first]
    candidates = [Candidate(symbol=s, link_address=s.link_address + offset) for s in found]
    if not candidates:
        return NameResolution(candidates=(), evidence=tuple(evidence))
    if size is not None:
        module = symbols.image.is_module
        verdicts = [_size_fits(c.symbol, size, module) for c in candidates]
        fitting = [c for c, v in zip(candidates, verdicts, strict=True) if v is not False]
        if not fitting:
            # The kernel printed the kallsyms size of the symbol it found: a size no
            # candidate has means another build, never a reason to pick one anyway.
            sizes = sorted({f"{c.symbol.kallsyms_size:#x}" for c in candidates})
            shown = ", ".join(sizes[:6]) + (" ..." if len(sizes) > 6 else "")
            detail = (
                f"printed size {size:#x} fits none of the {len(candidates)} symbol(s) "
                f"printed as {name} (kallsyms sizes {shown})"
            )
            evidence.append(
                Evidence(
                    kind=EvidenceKind.KALLSYMS_SIZE,
                    detail=detail,
                    candidates_before=len(candidates),
                    candidates_after=0,
                )
            )
            return NameResolution(candidates=(), evidence=tuple(evidence))
        if len(fitting) < len(candidates) or (len(candidates) == 1 and verdicts[0]):
            evidence.append(
                Evidence(
                    kind=EvidenceKind.KALLSYMS_SIZE,
                    detail=f"printed size {size:#x}",
                    candidates_before=len(candidates),
                    candidates_after=len(fitting),
                )
            )
        candidates = fitting
    for kind, detail, test in machine_tests:
        if len(candidates) == 1:
            break
        candidates = _narrow(candidates, evidence, kind, test, detail)
    # Aliases (several names at one address) are one piece of code, not an ambiguity.
    unique_code: dict[int, Candidate] = {}
    for candidate in candidates:
        unique_code.setdefault(candidate.symbol.link_address, candidate)
    return NameResolution(candidates=tuple(unique_code.values()), evidence=tuple(evidence))


def _size_fits(symbol: Symbol, printed_size: int, module: bool) -> bool | None:
    """Whether ``symbol`` has the printed kallsyms size; None when the printed size depends
    on how the kernel laid the module out, not on the symbol: module data (kernel/module/
    kallsyms.c find_kallsyms_symbol() bounds the size by the end of the memory region holding
    the address: the text end in 6.1, which wraps below a data address, the data region's end
    in 6.4+) and wrapped sizes. vmlinux sizes and module text sizes are exact."""
    if printed_size >= WRAPPED_SIZE:
        return None
    if module and symbol.nm_type not in "tTwW":
        return None
    return symbol.kallsyms_size == printed_size


def narrow_further(
    resolution: NameResolution, kind: EvidenceKind, detail: str, test: CandidateTest
) -> NameResolution:
    """Apply one more test (the cross-frame call-target check) to a resolution."""
    evidence = list(resolution.evidence)
    candidates = _narrow(list(resolution.candidates), evidence, kind, test, detail)
    return NameResolution(candidates=tuple(candidates), evidence=tuple(evidence))
