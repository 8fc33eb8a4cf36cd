"""The records a kallsyms check produces: build facts, name groups, dump findings.

Every address here is a link-time address unless its name says ``runtime_address``; the
KASLR offset is ``runtime_address - link_address`` of the kernel a dump came from.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ltosyms.elf.build_facts import BuildFacts, RuleChoice
from ltosyms.elf.symtab import Symbol
from ltosyms.names.kallsyms import CleanupRule
from ltosyms.names.suffixes import SuffixKind


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupMember:
    symbol: Symbol
    file: str | None  # source file of the symbol (DWARF), None when not known
    size_unique: bool  # no other member at another address has this kallsyms size


@dataclass(frozen=True, slots=True, kw_only=True)
class AmbiguousName:
    """A printed name that stands for kept symbols at two or more addresses.

    ``size_separates``: every address of the group has its own kallsyms size, so a frame
    ``name+0xOFF/0xSIZE`` still identifies its symbol; otherwise the name is unresolvable from
    an oops line alone and a lookup by name (kprobes, livepatch, BPF attach) picks one of them.
    """

    printed_name: str
    members: tuple[GroupMember, ...]  # by link address, then .symtab index
    size_separates: bool
    made_by_cleanup: bool  # the members' ELF names differ: the cleanup rule merged them
    is_text: bool  # at least one member is a function

    @property
    def addresses(self) -> int:
        return len({m.symbol.link_address for m in self.members})

    @property
    def elf_names(self) -> tuple[str, ...]:
        return tuple(sorted({m.symbol.name for m in self.members}))


@dataclass(frozen=True, slots=True, kw_only=True)
class LossyName:
    """A kept symbol whose printed name hides that it is a clone or split part.

    Under the 5.15-6.1.41 rule ``foo.cold`` prints as ``foo``: an oops then shows ``foo+0x1c``
    for code that lives far from ``foo``. ``merged`` says that another kept symbol (usually the
    parent ``foo``) prints under the same name.
    """

    symbol: Symbol
    printed_name: str
    removed: tuple[SuffixKind, ...]  # the clone/split kinds the cleanup cut off
    merged: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleSummary:
    """The effect of one cleanup rule on the kept symbols of one vmlinux."""

    rule: CleanupRule
    kept_count: int
    printed_names: int  # distinct printed names
    renamed: int  # kept symbols printed under a name other than their ELF name
    ambiguous: int  # printed names standing for two or more addresses
    ambiguous_symbols: int  # kept symbols behind those names
    ambiguous_text: int  # ... of which name at least one function
    made_by_cleanup: int  # ambiguous names whose members' ELF names differ
    size_separated: int  # ambiguous names the printed size still resolves
    unresolvable: int  # ambiguous names it does not
    unresolvable_text: int
    lossy: int  # kept symbols whose printed name hides a clone/split suffix
    merged: int  # ... whose printed name also names another kept symbol
    lossy_by_kind: tuple[tuple[SuffixKind, int], ...]  # removed kind -> symbols, biggest first


@dataclass(frozen=True, slots=True, kw_only=True)
class NameAnalysis:
    """One rule in detail: the summary plus every group and lossy name behind it."""

    summary: RuleSummary
    ambiguous: tuple[AmbiguousName, ...]
    lossy: tuple[LossyName, ...]


class DumpKind(enum.Enum):
    KALLSYMS = "kallsyms"  # a copy of /proc/kallsyms: runtime addresses, kallsyms' symbols
    SYSTEM_MAP = "system-map"  # scripts/mksysmap output: link addresses, more symbols


@dataclass(frozen=True, slots=True, kw_only=True)
class DumpEntry:
    """One line of a /proc/kallsyms copy or System.map."""

    runtime_address: int  # as printed (System.map prints link addresses)
    nm_type: str
    name: str
    module: str | None  # "[tun]" part of /proc/kallsyms, without brackets
    line_no: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Dump:
    path: str
    kind: DumpKind
    entries: tuple[DumpEntry, ...]
    skipped_lines: int  # lines that are not `ADDRESS TYPE NAME [\t[module]]`


class Verdict(enum.Enum):
    MATCH = "match"  # every symbol is where the vmlinux puts it (after the KASLR offset)
    MISMATCH = "mismatch"  # missing, extra or moved symbols, other names, another architecture
    HIDDEN = "hidden"  # all addresses are zero (kptr_restrict) and the names are the vmlinux's


@dataclass(frozen=True, slots=True, kw_only=True)
class MovedSymbol:
    name: str
    link_address: int
    expected_address: int  # link_address plus the KASLR offset (absolute symbols: unchanged)
    runtime_address: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DumpCheck:
    """A dump compared with the vmlinux."""

    path: str
    kind: DumpKind
    verdict: Verdict
    reason: str
    kaslr_offset: int | None  # runtime - link, None when hidden
    offset_votes: int  # unique names that agree on kaslr_offset
    unique_names: int  # unique names that voted
    vmlinux_entries: int  # dump entries without a [module]
    module_entries: int
    modules: tuple[str, ...]
    compared: int  # vmlinux symbols the dump is expected to list
    matched: int
    missing: tuple[Symbol, ...]  # expected, absent from the dump
    extra: tuple[DumpEntry, ...]  # in the dump, not in the vmlinux
    moved: tuple[MovedSymbol, ...]  # in both, at another address
    skipped_lines: int
    addresses_hidden: bool = False  # every address is zero: names compared, nothing else
    dump_machine: str | None = None  # the architecture the dump's names are of, when they say


class FailCondition(enum.Enum):
    """Conditions ``--fail-on`` can turn into exit status 1."""

    UNRESOLVABLE = "unresolvable"  # a function name the printed size cannot resolve
    AMBIGUOUS = "ambiguous"  # a function name standing for two or more addresses
    MISMATCH = "mismatch"  # the dump is not of this vmlinux
    HIDDEN = "hidden"  # the dump's addresses are hidden


@dataclass(frozen=True, slots=True, kw_only=True)
class KallsymsCheck:
    """Everything ``ltosyms kallsyms-check`` reports about one vmlinux."""

    path: str
    build_id: str | None
    machine: str
    build: BuildFacts
    choice: RuleChoice
    all_symbols: bool  # CONFIG_KALLSYMS_ALL, as detected from the image
    stored_count: int | None  # kallsyms_num_syms in the image
    selected: NameAnalysis  # the chosen rule in detail
    rules: tuple[RuleSummary, ...]  # every rule, side by side (CLEANUP_RULES order)
    dump: DumpCheck | None

    @property
    def kept_count(self) -> int:
        return self.selected.summary.kept_count

    def holds(self, condition: FailCondition) -> bool:
        """True when ``condition`` is met (``--fail-on`` then exits 1)."""
        summary = self.selected.summary
        if condition is FailCondition.UNRESOLVABLE:
            return summary.unresolvable_text > 0
        if condition is FailCondition.AMBIGUOUS:
            return summary.ambiguous_text > 0
        if self.dump is None:
            return False
        if condition is FailCondition.MISMATCH:
            return self.dump.verdict is Verdict.MISMATCH
        return self.dump.addresses_hidden
