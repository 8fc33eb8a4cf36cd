"""The instruction that ends at a return address: the call site of a Call Trace entry.

Every Call Trace entry but the first of a ``pt_regs`` block is the address *after* a call
(docs/kernel-facts.md#return-addresses). The call instruction is what users want mapped to a source
line, and a slot where no call ends is no return address at all -- the evidence that judges ``? ``
entries.

x86-64 instructions are 1..15 bytes long, so an instruction ending at an address is found by
a linear sweep from a known instruction start before it. The nearest one is usually the start
of the DWARF line-table row that holds the address (compilers start rows only at
instructions): when that row is known cheaply (the address table, or a unit already loaded) a
few instructions from there decide, if one of them is a call ending exactly at the address.
Otherwise the function's start is: sweeps from it are cached per function start and extended
on demand (a ``sysrq t`` dump hits ``schedule``, ``worker_thread`` and friends hundreds of
times). When a sweep is impossible (no start, or bytes that decode to nothing before the
address) the bytes just before the address are tried as one instruction of each length
1..15. arm64 is fixed-width: the instruction is the word before the address.

Answers of the function sweeps are facts about the image, so a finder given memos (the
on-disk index's, through :class:`~ltosyms.context.ImageContext`) keeps them there: a later run
asks them first and sweeps no function it has seen (a call found from its row is found again
faster than a stored one is read, and is not kept).
"""

from __future__ import annotations

import bisect
import weakref
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from ltosyms.disasm.decoder import (
    AARCH64,
    ARM64_INSTRUCTION,
    RETPOLINE_THUNK_PREFIXES,
    X86_64,
    X86_MAX_INSTRUCTION,
    decode_one,
    direct_target,
    is_call,
    iter_instructions,
    normalize_arch,
    tidy_op_str,
)
from ltosyms.disasm.records import CallKind, CallSite, NoCallSite, PatchReason, SweepMethod
from ltosyms.disasm.targets import named_symbol_at
from ltosyms.elf.image import KernelImage
from ltosyms.elf.symtab import SymbolTable
from ltosyms.errors import InputError
from ltosyms.stores import Memo

if TYPE_CHECKING:
    from ltosyms.disasm.patching import PatchSite, PatchSites, Replacement

# A sweep longer than this is not started: the largest kernel functions are a few tens of KiB
# (Debian 6.1: ~40 KiB), so a "function start" further away is a wrong guess.
MAX_SWEEP_BYTES = 256 * 1024
# Sweeps and answers a finder keeps in memory; past these it forgets them all (a stream of
# return addresses from every function of a vmlinux, 218,000 of them, would otherwise keep
# every function's instructions: 1.6 GB). Forgotten sweeps come back from the index or are
# swept again; a log's frames fall in far fewer functions.
SWEEPS_KEPT = 4096
ANSWERS_KEPT = 65_536
# A line-table row longer than this is not swept from its start (the sweep from the function
# start answers): rows of compiled code are a few instructions, those of assembly one.
MAX_ROW_SWEEP_BYTES = 4096
_SWEEP_CHUNK = 256
_MAX_CHUNK = 65536


class CodeSource(Protocol):
    """Anything that reads code bytes at link addresses (:class:`KernelImage` does)."""

    def read(self, link_address: int, length: int) -> bytes: ...


class BytesSource:
    """Code bytes held in memory, the first one at ``link_address``."""

    def __init__(self, data: bytes, link_address: int) -> None:
        self.data = bytes(data)
        self.link_address = link_address

    def read(self, link_address: int, length: int) -> bytes:
        start = link_address - self.link_address
        if not 0 <= start < len(self.data):
            raise InputError(f"no code bytes at {link_address:#x}")
        return self.data[start : start + length]


class Sweep:
    """Instructions decoded forward from one function start, extended on demand."""

    __slots__ = ("addresses", "desyncs", "ends", "exhausted", "next_address", "start", "texts")

    def __init__(self, start: int) -> None:
        self.start = start
        self.addresses: list[int] = []
        self.texts: list[tuple[int, str, str]] = []  # (size, mnemonic, op_str)
        self.ends: dict[int, int] = {}  # end address -> position
        self.desyncs: list[int] = []  # addresses of bytes that decode to nothing
        self.next_address = start
        self.exhausted = False

    def extend_to(self, source: CodeSource, target: int) -> None:
        while self.next_address < target and not self.exhausted:
            want = max(_SWEEP_CHUNK, target - self.next_address + X86_MAX_INSTRUCTION)
            try:
                chunk = source.read(self.next_address, min(want, _MAX_CHUNK))
            except InputError:
                chunk = b""
            if not chunk:
                self.exhausted = True  # the section (or the bytes) end here
                return
            consumed = 0
            for address, size, mnemonic, op_str in iter_instructions(
                X86_64, chunk, self.next_address
            ):
                self.ends[address + size] = len(self.addresses)
                self.addresses.append(address)
                self.texts.append((size, mnemonic, op_str))
                consumed = address + size - self.next_address
            # capstone stops at bytes that are no instruction, or at an instruction cut by the
            # chunk's end (the next chunk then starts with it).
            if consumed == 0 or consumed < len(chunk) - X86_MAX_INSTRUCTION:
                # Data in text, or a wrong start: step over one byte; a linear sweep
                # resynchronises within a few instructions.
                self.desyncs.append(self.next_address + consumed)
                consumed += 1
            self.next_address += consumed

    @classmethod
    def from_columns(
        cls,
        *,
        start: int,
        next_address: int,
        exhausted: bool,
        desyncs: Sequence[int],
        addresses: Sequence[int],
        sizes: Sequence[int],
        mnemonics: Sequence[str],
        op_strs: Sequence[str],
    ) -> Sweep:
        """A sweep as far as it had gone (what the index keeps of it); :class:`ValueError`
        when the columns do not fit together."""
        if not len(addresses) == len(sizes) == len(mnemonics) == len(op_strs):
            raise ValueError("sweep columns differ in length")
        if addresses and addresses[0] < start:
            raise ValueError("sweep starts before its function")
        sweep = cls(start)
        sweep.addresses = list(addresses)
        sweep.texts = list(zip(sizes, mnemonics, op_strs, strict=True))
        sweep.ends = {a + n: i for i, (a, n) in enumerate(zip(addresses, sizes, strict=True))}
        sweep.desyncs = list(desyncs)
        sweep.next_address = next_address
        sweep.exhausted = exhausted
        return sweep

    def covering(self, address: int) -> int | None:
        position = bisect.bisect_right(self.addresses, address) - 1
        if position >= 0 and self.addresses[position] + self.texts[position][0] > address:
            return position
        return None


class CallSiteFinder:
    """Answers "which instruction ends at this return address?" for one image.

    ``symbols`` (optional) names direct-call targets, so calls into retpoline thunks are
    reported as the indirect calls they are.
    """

    def __init__(
        self,
        source: KernelImage | CodeSource,
        arch: str | None = None,
        symbols: SymbolTable | None = None,
        *,
        call_sites: Memo[tuple[int, int | None], CallSite | NoCallSite] | None = None,
        sweeps: Memo[int, Sweep] | None = None,
        patch_sites: Memo[None, PatchSites] | None = None,
        row_start: Callable[[int], int | None] | None = None,
    ) -> None:
        """The memos keep answers (by return address and function start), sweeps (by
        function start) and the image's patch tables for later runs. Answers depend on the
        symbol table (thunk names): memos of answers and sweeps need ``symbols``.
        ``row_start(address)``, when given, is where the line-table row covering ``address``
        starts, when that is cheap to know (the DWARF resolver's
        :meth:`~ltosyms.dwarf.DwarfResolver.row_start`): a short sweep from there finds most
        calls (see :meth:`_call_from_row_start`)."""
        if isinstance(source, KernelImage):
            arch = arch or source.machine
            # Module call displacements are relocations, zero in the .ko until the loader
            # fills them in: the image does not know their targets.
            self.is_module = source.is_module
        else:
            self.is_module = False
        if arch is None:
            raise InputError("the architecture is needed to decode raw code bytes")
        if (call_sites is not None or sweeps is not None) and symbols is None:
            raise ValueError("a memo of call sites needs the image's symbol table")
        self.arch = normalize_arch(arch)
        self.source = source
        self.symbols = symbols
        self._sweeps: dict[int, Sweep] = {}
        self._answers: dict[tuple[int, int | None], CallSite | None] = {}  # answers given
        self._call_sites = call_sites
        self._stored_sweeps = sweeps
        self._patch_sites = patch_sites
        self._row_start = row_start if self.arch == X86_64 else None

    def call_ending_at(self, return_address: int, function_start: int | None) -> CallSite | None:
        """The instruction ending exactly at ``return_address``; remembered, and with a memo
        kept for later runs (see :meth:`find_call_ending_at` for the rules)."""
        key = (return_address, function_start)
        if key in self._answers:
            return self._answers[key]
        if self._row_start is not None and function_start is not None:
            site = self._call_from_row_start(return_address, function_start)
            if site is not None:
                self._remember(key, site)  # found again faster than a memo is read
                return site
        if self._call_sites is not None:
            stored = self._call_sites.get(key)
            if stored is not None:
                site = None if stored is NoCallSite.NO_INSTRUCTION else stored
                self._remember(key, site)
                return site
        site = self.find_call_ending_at(return_address, function_start)
        self._remember(key, site)
        if self._call_sites is not None:
            self._call_sites.put(key, NoCallSite.NO_INSTRUCTION if site is None else site)
        return site

    def _remember(self, key: tuple[int, int | None], site: CallSite | None) -> None:
        if len(self._answers) >= ANSWERS_KEPT:
            self._answers.clear()
        self._answers[key] = site

    def find_call_ending_at(
        self, return_address: int, function_start: int | None
    ) -> CallSite | None:
        """The instruction ending exactly at ``return_address``, found in the code.

        ``function_start`` is the link address of the function that holds the call: for an x86
        trace entry, the symbol the kernel printed (``%pB`` names ``address - 1``), so a call
        that is its function's last instruction is found in that function. The record's
        ``kind`` is NOT_A_CALL when the instruction there is no call; None means that no
        instruction ends at ``return_address`` (or that there is no code).
        """
        if self.arch == AARCH64:
            return self._fixed_width(return_address)
        if function_start is None or not 0 <= return_address - function_start <= MAX_SWEEP_BYTES:
            return self._window(return_address)
        sweep = self._sweep(function_start)
        self._extend(sweep, function_start, return_address)
        position = sweep.ends.get(return_address)
        if position is not None:
            site = self._from_sweep(sweep, position, return_address)
            if site.is_call:
                return site
            return self._patched_call(sweep, return_address) or site
        patched = self._patched_call(sweep, return_address)
        if patched is not None:
            return patched
        # The code ran out before the return address (however far the sweep went: a stored
        # sweep covers its whole function).
        ran_out = sweep.exhausted and sweep.next_address < return_address
        if (sweep.desyncs and sweep.desyncs[0] < return_address) or ran_out:
            return self._window(return_address)
        return None

    def _call_from_row_start(self, return_address: int, function_start: int) -> CallSite | None:
        """The call ending at ``return_address``, decoded from the start of the line-table row
        that holds it; None when that finds no call ending there (the sweep from the function
        start then decides).

        Rows start at instructions, so from a row start inside the function the instructions
        up to the return address are those of the sweep from the function start wherever that
        sweep meets the row start on an instruction boundary, as it does in compiled code: a
        few instructions instead of hundreds, and the answer that sweep gives (a call ending
        there is returned before any boot-patch rule). Checked on every call of all of Debian
        6.1's .text and of the corpus kernels' sampled functions; bytes that are no code
        (data in text) before the row could make the two differ, and none was found."""
        assert self._row_start is not None
        if not 0 <= return_address - function_start <= MAX_SWEEP_BYTES:
            return None  # a start this far is a wrong guess: the backward window decides
        row_start = self._row_start(return_address - 1)
        if row_start is None or not function_start <= row_start < return_address:
            return None
        if return_address - row_start > MAX_ROW_SWEEP_BYTES:
            return None
        try:
            code = self.source.read(row_start, return_address - row_start)
        except InputError:
            return None
        for instruction in iter_instructions(X86_64, code, row_start):
            address, size, mnemonic, _operands = instruction
            if address + size < return_address:
                continue
            if address + size > return_address or not is_call(X86_64, mnemonic):
                return None
            method = SweepMethod.FUNCTION_SWEEP  # a sweep within the function, as from its start
            raw = code[address - row_start :]
            return self._record(*instruction, return_address, raw, patch=None, method=method)
        return None

    def boundary_at_or_after(self, function_start: int, link_address: int) -> int | None:
        """The first instruction start at or after ``link_address`` in the function starting
        at ``function_start`` (x86; arm64 instructions start every 4 bytes)."""
        if self.arch == AARCH64:
            return -(-link_address // ARM64_INSTRUCTION) * ARM64_INSTRUCTION
        if not 0 <= link_address - function_start <= MAX_SWEEP_BYTES:
            return None
        sweep = self._sweep(function_start)
        self._extend(sweep, function_start, link_address + X86_MAX_INSTRUCTION + 1)
        position = bisect.bisect_left(sweep.addresses, link_address)
        if position < len(sweep.addresses):
            return sweep.addresses[position]
        return None

    def clear_cache(self) -> None:
        self._sweeps.clear()
        self._answers.clear()

    @cached_property
    def sites(self) -> PatchSites:
        """The image's boot-time patch sites (read on first need: most lookups end at a call)."""
        from ltosyms.disasm.patching import PatchSites, patch_sites

        if isinstance(self.source, KernelImage):
            return patch_sites(self.source, self._patch_sites)
        return PatchSites()

    def _sweep(self, function_start: int) -> Sweep:
        sweep = self._sweeps.get(function_start)
        if sweep is None:
            sweep = self._stored_sweep(function_start) or Sweep(function_start)
            if len(self._sweeps) >= SWEEPS_KEPT:
                self._sweeps.clear()
            self._sweeps[function_start] = sweep
        return sweep

    def _stored_sweep(self, function_start: int) -> Sweep | None:
        return None if self._stored_sweeps is None else self._stored_sweeps.get(function_start)

    def _extend(self, sweep: Sweep, function_start: int, target: int) -> None:
        """Decode ``sweep`` up to ``target``; with a memo of sweeps, up to its function's end,
        so that the kept sweep answers any later question about that function. (A linear
        sweep decodes the same instructions however far it goes at a time.)"""
        if sweep.next_address >= target or sweep.exhausted:
            return
        if self._stored_sweeps is not None and self.symbols is not None:
            symbol = self.symbols.lookup(function_start)
            if symbol is not None and symbol.link_address == function_start:
                size = min(symbol.kallsyms_size or 0, MAX_SWEEP_BYTES)
                target = max(target, function_start + size)
            sweep.extend_to(self.source, target)
            self._stored_sweeps.put(function_start, sweep)
            return
        sweep.extend_to(self.source, target)

    # -- boot-time patched calls ------------------------------------------------------------------

    def _patched_call(self, sweep: Sweep, return_address: int) -> CallSite | None:
        """A call that exists only at run time and ends at ``return_address``."""
        for site in self.sites.covering(return_address - 1):
            if site.reason is PatchReason.ALTERNATIVE:
                found = self._alternative_call(site, return_address)
            elif site.reason is PatchReason.PARAVIRT:
                # apply_paravirt writes a 5-byte direct call to the chosen pv operation.
                found = self._rewritten(sweep, site, return_address, 5, CallKind.INDIRECT)
            elif site.reason is PatchReason.RETPOLINE:
                # patch_retpoline: `call *%reg` is 2 bytes, 3 for %r8..%r15.
                found = self._rewritten(sweep, site, return_address, (2, 3), CallKind.THUNK)
            else:
                found = None
            if found is not None:
                return found
        if not self.sites.available:
            # No tables (modules, old kernels): the two rewrites that shorten a call. A
            # retpoline `call __x86_indirect_thunk_<reg>` (e8 rel32) becomes `call *%reg`
            # (2 or 3 bytes); a paravirt `call *pv_ops+N(%rip)` (ff 15, 6 or 7 bytes with a cs
            # prefix) becomes a 5-byte direct call.
            position = sweep.covering(return_address)
            if position is not None and sweep.addresses[position] < return_address:
                found = self._from_sweep(sweep, position, return_address, PatchReason.CALL_OR_JUMP)
                size = sweep.texts[position][0]
                shortened = found.kind is CallKind.DIRECT and size == 5 and found.length in (2, 3)
                shortened |= (
                    found.kind is CallKind.INDIRECT and size in (6, 7) and found.length == 5
                )
                if shortened:
                    return replace(
                        found, kind=CallKind.INDIRECT, target_link_address=None, possible_targets=()
                    )
        return None

    def _alternative_call(self, site: PatchSite, return_address: int) -> CallSite | None:
        offset = return_address - site.link_address
        calls = []
        replacement_of: dict[int, Replacement] = {}
        for replacement in site.replacements:
            # Decoded where the replacement lies: a rel32 there reaches the same absolute
            # target as once copied into the site (apply_alternatives re-aims it).
            for address, size, mnemonic, op_str in iter_instructions(
                self.arch, replacement.data, replacement.link_address
            ):
                end = address + size - replacement.link_address
                if end == offset and is_call(self.arch, mnemonic):
                    calls.append((address, size, mnemonic, op_str))
                    replacement_of[address] = replacement
                if end >= offset:
                    break
        if not calls:
            return None
        targets = tuple(
            dict.fromkeys(
                _runtime_target(site, replacement_of[address], target)
                for address, _size, mnemonic, op_str in calls
                if (target := direct_target(self.arch, mnemonic, op_str)) is not None
            )
        )
        address, size, mnemonic, op_str = calls[0]
        kind = CallKind.DIRECT if targets else CallKind.INDIRECT
        return CallSite(
            return_address=return_address,
            link_address=return_address - size,
            length=size,
            raw=self.source.read(address, size),
            mnemonic=mnemonic,
            op_str=op_str,
            kind=kind,
            target_link_address=targets[0] if len(targets) == 1 else None,
            possible_targets=targets,
            thunk=None,
            patch=PatchReason.ALTERNATIVE,
            method=SweepMethod.FUNCTION_SWEEP,
        )

    def _rewritten(
        self,
        sweep: Sweep,
        site: PatchSite,
        return_address: int,
        lengths: int | tuple[int, ...],
        kind: CallKind,
    ) -> CallSite | None:
        length = return_address - site.link_address
        if length not in (lengths if isinstance(lengths, tuple) else (lengths,)):
            return None
        position = sweep.ends.get(site.end_address)
        if position is None or sweep.addresses[position] != site.link_address:
            return None
        original = self._from_sweep(sweep, position, return_address, site.reason)
        if not original.is_call:
            return None
        # The vmlinux's instruction, with what the rewrite makes of it at run time.
        return replace(
            original,
            length=length,
            kind=kind,
            target_link_address=None,
            possible_targets=(),
            thunk=original.thunk if kind is CallKind.THUNK else None,
        )

    # -- records ----------------------------------------------------------------------------------

    def _from_sweep(
        self,
        sweep: Sweep,
        position: int,
        return_address: int,
        patch: PatchReason | None = None,
    ) -> CallSite:
        size, mnemonic, op_str = sweep.texts[position]
        address = sweep.addresses[position]
        return self._record(
            address,
            size,
            mnemonic,
            op_str,
            return_address,
            self._instruction_bytes(address, size),
            patch=patch,
            method=SweepMethod.FUNCTION_SWEEP,
        )

    def _instruction_bytes(self, address: int, size: int) -> bytes:
        """The bytes of an instruction decoded before and not kept (none when unreadable)."""
        try:
            return self.source.read(address, size)
        except InputError:
            return b""

    def _record(
        self,
        address: int,
        size: int,
        mnemonic: str,
        op_str: str,
        return_address: int,
        raw: bytes,
        *,
        patch: PatchReason | None,
        method: SweepMethod,
    ) -> CallSite:
        """The call site of the instruction ``raw`` (its bytes, as the caller read them)."""
        kind, target = self._classify(mnemonic, op_str)
        if target is not None and self.is_module and target in (address, address + size):
            target = None  # an unrelocated displacement (zero in the .ko)
        thunk = None
        if kind is CallKind.DIRECT and target is not None and self.symbols is not None:
            thunk = self._thunk_at(target)
            if thunk is not None:
                kind = CallKind.THUNK
        return CallSite(
            return_address=return_address,
            link_address=address,
            length=return_address - address,
            raw=raw,
            mnemonic=mnemonic,
            op_str=tidy_op_str(self.arch, op_str),
            kind=kind,
            target_link_address=target,
            possible_targets=(target,) if target is not None else (),
            thunk=thunk,
            patch=patch,
            method=method,
        )

    def _thunk_at(self, target: int) -> str | None:
        """The retpoline thunk holding ``target``, by the name that says its register."""
        assert self.symbols is not None
        symbol = named_symbol_at(self.symbols, target)
        if symbol is None or not symbol.name.startswith(RETPOLINE_THUNK_PREFIXES):
            return None
        return symbol.name

    def _classify(self, mnemonic: str, op_str: str) -> tuple[CallKind, int | None]:
        if not is_call(self.arch, mnemonic):
            return CallKind.NOT_A_CALL, None
        target = direct_target(self.arch, mnemonic, op_str)
        return (CallKind.DIRECT, target) if target is not None else (CallKind.INDIRECT, None)

    def _fixed_width(self, return_address: int) -> CallSite | None:
        if return_address % ARM64_INSTRUCTION:
            return None
        address = return_address - ARM64_INSTRUCTION
        try:
            word = self.source.read(address, ARM64_INSTRUCTION)
        except InputError:
            return None
        decoded = decode_one(AARCH64, word, address) if len(word) == ARM64_INSTRUCTION else None
        if decoded is None:
            return None
        _address, size, mnemonic, op_str = decoded
        return self._record(
            address,
            size,
            mnemonic,
            op_str,
            return_address,
            word,
            patch=None,
            method=SweepMethod.FIXED_WIDTH,
        )

    def _window(self, return_address: int) -> CallSite | None:
        """Guess from the bytes before ``return_address``: each length 1..15 whose bytes decode
        as exactly one instruction is a candidate; a call wins (direct ones first, then the
        shortest), else the shortest instruction."""
        if self.arch == AARCH64:
            return self._fixed_width(return_address)
        candidates: list[tuple[int, int, str, str]] = []
        for length in range(1, X86_MAX_INSTRUCTION + 1):
            address = return_address - length
            try:
                data = self.source.read(address, length)
            except InputError:
                break
            if len(data) != length:
                break
            decoded = decode_one(X86_64, data, address)
            if decoded is not None and decoded[1] == length:
                candidates.append(decoded)
        if not candidates:
            return None
        calls = [c for c in candidates if is_call(X86_64, c[2])]
        calls.sort(key=lambda c: (self._classify(c[2], c[3])[0] is not CallKind.DIRECT, c[1]))
        address, size, mnemonic, op_str = calls[0] if calls else candidates[0]
        return self._record(
            address,
            size,
            mnemonic,
            op_str,
            return_address,
            self._instruction_bytes(address, size),
            patch=None,
            method=SweepMethod.BACKWARD_WINDOW,
        )


def _runtime_target(site: PatchSite, replacement: Replacement, target: int) -> int:
    """Where a call of ``replacement`` goes once copied into ``site``: a call aimed inside
    its own replacement (``call 772f`` of the RSB filling sequence, __FILL_RETURN_SLOT) keeps
    its displacement and lands at the same place inside the site; one aimed elsewhere is
    re-aimed to reach the target it had where the replacement lies (6.1: a replacement that
    is one 5-byte call; 6.12: any). docs/kernel-facts.md#boot-patching."""
    start, end = replacement.link_address, replacement.link_address + len(replacement.data)
    if len(replacement.data) != 5 and start <= target < end:
        return site.link_address + (target - start)
    return target


_finders: weakref.WeakKeyDictionary[KernelImage, CallSiteFinder] = weakref.WeakKeyDictionary()


def finder_for(image: KernelImage, symbols: SymbolTable | None = None) -> CallSiteFinder:
    """The image's shared finder without memos (its sweeps are cached as long as the image
    lives), for callers that have no :class:`~ltosyms.context.ImageContext`."""
    finder = _finders.get(image)
    if finder is None or (symbols is not None and finder.symbols is not symbols):
        finder = _finders[image] = CallSiteFinder(image, symbols=symbols)
    return finder


def call_ending_at(
    code: KernelImage | bytes,
    return_address: int,
    arch: str | None,
    function_start: int | None,
    *,
    code_address: int | None = None,
    symbols: SymbolTable | None = None,
) -> CallSite | None:
    """One-shot form of :meth:`CallSiteFinder.call_ending_at`.

    ``code`` is an image (its sweeps are cached) or raw bytes whose first byte is at
    ``code_address`` (default: ``function_start``).
    """
    if isinstance(code, KernelImage):
        if arch is not None and normalize_arch(arch) != normalize_arch(code.machine):
            raise InputError(f"{code.path} is {code.machine}, not {arch}")
        return finder_for(code, symbols).call_ending_at(return_address, function_start)
    base = code_address if code_address is not None else function_start
    if base is None:
        raise InputError("raw code bytes need code_address or function_start")
    finder = CallSiteFinder(BytesSource(code, base), arch, symbols)
    return finder.call_ending_at(return_address, function_start)
