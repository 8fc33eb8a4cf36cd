"""Render a :class:`KallsymsCheck` as the ``ltosyms.kallsyms-check/1`` JSON document.

Addresses and the KASLR offset are hex strings (``"0xffffffff81000000"``), as in every ltosyms
JSON document; symbol addresses are link-time addresses, dump addresses runtime addresses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ltosyms.elf.symtab import Symbol
from ltosyms.kallsyms_check import (
    AmbiguousName,
    DumpCheck,
    DumpEntry,
    FailCondition,
    KallsymsCheck,
    LossyName,
    RuleSummary,
)

SCHEMA = "ltosyms.kallsyms-check/1"


def _signed_hex(value: int | None) -> str | None:
    """Hex with a sign: KASLR offsets and moves can be negative."""
    if value is None:
        return None
    return f"-{-value:#x}" if value < 0 else f"{value:#x}"


def _member(symbol: Symbol, file: str | None, size_unique: bool) -> dict[str, Any]:
    return {
        "name": symbol.name,
        "address": _signed_hex(symbol.link_address),
        "kallsyms_size": symbol.kallsyms_size,
        "file": file,
        "elf_size": symbol.elf_size,
        "nm_type": symbol.nm_type,
        "size_unique": size_unique,
    }


def _group(group: AmbiguousName) -> dict[str, Any]:
    return {
        "printed_name": group.printed_name,
        "symbols": [_member(m.symbol, m.file, m.size_unique) for m in group.members],
        "size_separates": group.size_separates,
        "made_by_cleanup": group.made_by_cleanup,
        "text": group.is_text,
    }


def _lossy(name: LossyName) -> dict[str, Any]:
    return {
        "name": name.symbol.name,
        "printed_name": name.printed_name,
        "address": _signed_hex(name.symbol.link_address),
        "kallsyms_size": name.symbol.kallsyms_size,
        "removed": [kind.value for kind in name.removed],
        "merged": name.merged,
    }


def _summary(summary: RuleSummary) -> dict[str, Any]:
    return {
        "rule": summary.rule.name,
        "applies_to": summary.rule.applies_to,
        "origin": summary.rule.origin,
        "kept_count": summary.kept_count,
        "printed_names": summary.printed_names,
        "renamed": summary.renamed,
        "ambiguous": summary.ambiguous,
        "ambiguous_symbols": summary.ambiguous_symbols,
        "ambiguous_text": summary.ambiguous_text,
        "made_by_cleanup": summary.made_by_cleanup,
        "size_separated": summary.size_separated,
        "unresolvable": summary.unresolvable,
        "unresolvable_text": summary.unresolvable_text,
        "lossy": summary.lossy,
        "merged": summary.merged,
        "lossy_by_kind": {kind.value: count for kind, count in summary.lossy_by_kind},
    }


def _entry(entry: DumpEntry) -> dict[str, Any]:
    return {
        "name": entry.name,
        "address": _signed_hex(entry.runtime_address),
        "nm_type": entry.nm_type,
        "line": entry.line_no,
    }


def _dump(dump: DumpCheck) -> dict[str, Any]:
    return {
        "path": dump.path,
        "kind": dump.kind.value,
        "verdict": dump.verdict.value,
        "reason": dump.reason,
        "kaslr_offset": _signed_hex(dump.kaslr_offset),
        "offset_votes": dump.offset_votes,
        "unique_names": dump.unique_names,
        "vmlinux_entries": dump.vmlinux_entries,
        "module_entries": dump.module_entries,
        "modules": list(dump.modules),
        "compared": dump.compared,
        "matched": dump.matched,
        "skipped_lines": dump.skipped_lines,
        "addresses_hidden": dump.addresses_hidden,
        "dump_machine": dump.dump_machine,
        "missing": [
            {"name": s.name, "address": _signed_hex(s.link_address), "nm_type": s.nm_type}
            for s in dump.missing
        ],
        "extra": [_entry(e) for e in dump.extra],
        "moved": [
            {
                "name": m.name,
                "link_address": _signed_hex(m.link_address),
                "expected_address": _signed_hex(m.expected_address),
                "runtime_address": _signed_hex(m.runtime_address),
            }
            for m in dump.moved
        ],
    }


def check_json(check: KallsymsCheck, fail_on: Iterable[FailCondition] = ()) -> dict[str, Any]:
    """The whole report; ``fail_on`` adds which of the requested conditions hold."""
    build = check.build
    requested = list(dict.fromkeys(fail_on))
    return {
        "schema": SCHEMA,
        "path": check.path,
        "build_id": check.build_id,
        "machine": check.machine,
        "build": {
            "banner": build.banner,
            "version": ".".join(map(str, build.version)) if build.version else None,
            "compiler": build.compiler,
            "compiler_ident": build.compiler_ident,
            "lto_note": build.lto_note,
            "llvm_symbols": build.llvm_symbols,
            "clang_lto": build.clang_lto,
        },
        "rule": check.choice.rule.name,
        "rule_choice": {
            "automatic": check.choice.automatic,
            "reason": check.choice.reason,
            "applies_to": check.choice.rule.applies_to,
            "origin": check.choice.rule.origin,
        },
        "kallsyms_all": check.all_symbols,
        "kallsyms_num_syms": check.stored_count,
        "kept_count": check.kept_count,
        "summary": _summary(check.selected.summary),
        "ambiguous": [_group(g) for g in check.selected.ambiguous],
        "lossy": [_lossy(n) for n in check.selected.lossy],
        "rules": [_summary(s) for s in check.rules],
        "dump": _dump(check.dump) if check.dump is not None else None,
        "fail_on": [c.value for c in requested],
        "failed": [c.value for c in requested if check.holds(c)],
    }
