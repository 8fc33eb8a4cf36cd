"""``kallsyms-check``: what the kernel's name filtering does to one vmlinux.

open -> load symbols -> read build facts -> name analysis per cleanup rule (and a dump
comparison) -> frozen :class:`KallsymsCheck` record -> renderers. The rules themselves are data
in :mod:`ltosyms.names.kallsyms`; this package only applies them.

* :mod:`.build`: kernel version, compiler and LTO from the image; ``--rule auto``.
* :mod:`.names`: printed names, ambiguous groups, size separation, lossy names.
* :mod:`.dump`: ``/proc/kallsyms`` and ``System.map`` against the vmlinux, KASLR offset.
"""

from __future__ import annotations

from ltosyms.elf.build_facts import BuildFacts, RuleChoice, choose_rule, read_build_facts
from ltosyms.elf.kernel import LoadedImage
from ltosyms.kallsyms_check.dump import parse_dump, read_dump, verify_dump
from ltosyms.kallsyms_check.files import dwarf_files_of
from ltosyms.kallsyms_check.names import FilesOf, analyse, kept_columns, summarize
from ltosyms.kallsyms_check.records import (
    AmbiguousName,
    Dump,
    DumpCheck,
    DumpEntry,
    DumpKind,
    FailCondition,
    GroupMember,
    KallsymsCheck,
    LossyName,
    MovedSymbol,
    NameAnalysis,
    RuleSummary,
    Verdict,
)
from ltosyms.names.kallsyms import CLEANUP_RULES, stored_symbol_count

__all__ = [
    "AmbiguousName",
    "BuildFacts",
    "Dump",
    "DumpCheck",
    "DumpEntry",
    "DumpKind",
    "FailCondition",
    "FilesOf",
    "GroupMember",
    "KallsymsCheck",
    "LossyName",
    "MovedSymbol",
    "NameAnalysis",
    "RuleChoice",
    "RuleSummary",
    "Verdict",
    "check_kallsyms",
    "dwarf_files_of",
    "parse_dump",
    "read_dump",
    "verify_dump",
]


def check_kallsyms(
    loaded: LoadedImage,
    *,
    rule: str = "auto",
    dump: Dump | None = None,
    files_of: FilesOf | None = None,
) -> KallsymsCheck:
    """Analyse ``loaded`` under the cleanup rule ``rule`` (a name or ``auto``) and under every
    other rule in summary; compare ``dump`` with it when given. ``files_of`` names the source
    files of symbols (:func:`dwarf_files_of`; asked for the functions of ambiguous groups);
    without it files are left out."""
    image, table = loaded.image, loaded.symbols
    facts = read_build_facts(image, table)
    choice = choose_rule(facts, rule)
    kept = kept_columns(table)
    selected = analyse(table, kept, choice.rule, files_of)
    rules = tuple(
        selected.summary if candidate == choice.rule else summarize(kept, candidate)
        for candidate in CLEANUP_RULES
    )
    return KallsymsCheck(
        path=str(image.path),
        build_id=image.build_id,
        machine=image.machine,
        build=facts,
        choice=choice,
        all_symbols=table.rule.all_symbols,
        stored_count=stored_symbol_count(table),
        selected=selected,
        rules=rules,
        dump=verify_dump(table, dump) if dump is not None else None,
    )
