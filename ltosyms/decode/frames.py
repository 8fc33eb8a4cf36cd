"""Resolve one frame: printed ``name+off/size [module]`` or a raw address -> code and source.

Address spaces are kept apart by name (STYLE: angr/cle): ``runtime_address`` is what the
crashed kernel printed (KASLR applied), ``link_address`` is the vmlinux/module address,
``return_address`` is the instruction after a call, ``call_site`` is the call itself, and
``lookup_address`` is what the DWARF lookup used.

Return addresses (docs/kernel-facts.md#return-addresses): x86 prints trace entries with ``%pB`` (the
name is looked up at ``address - 1``, so ``caller+0xSIZE/0xSIZE`` is a call as the caller's last
instruction); arm64 prints ``%pS`` (a return address just past a noreturn ``bl`` names the *next*
function ``+0x0``). Either way the call instruction ends at the return address: capstone finds it
and its address is what we map to source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ltosyms.context import ImageContext
from ltosyms.decode.candidates import (
    Candidate,
    CandidateTest,
    Evidence,
    EvidenceKind,
    NameResolution,
    narrow_further,
    resolve_name,
)
from ltosyms.disasm.decoder import normalize_arch
from ltosyms.disasm.records import CallKind, CallSite, CodeMatch, CodeVerdict
from ltosyms.disasm.targets import (
    STATIC_CALL_TRAMPOLINE_PREFIX,
    NamedCall,
    TargetKind,
    name_call,
)
from ltosyms.dwarf import FunctionLines, SourceLocation
from ltosyms.elf.symtab import Symbol
from ltosyms.errors import DwarfError, InputError

if TYPE_CHECKING:
    from ltosyms.disasm import CallSiteFinder
    from ltosyms.disasm.compare import ImageWindow
    from ltosyms.dwarf import DwarfResolver
    from ltosyms.elf.relocations import ModuleRelocations
from ltosyms.names.eras import CleanupRule
from ltosyms.oops.records import CodeBytes, FrameRole
from ltosyms.stores import remembered


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameQuery:
    """What a log says about one frame, independent of how the log printed it."""

    symbol: str | None
    offset: int | None
    role: FrameRole  # exact IP (no adjustment) or return address (map the call before it)
    # What the log printed besides; None where it printed nothing.
    size: int | None = None
    module: str | None = None
    module_build_id: str | None = None
    # Not read by resolving, which works on link addresses: a frame resolves the same in every
    # boot, and its stored resolution is keyed without it (ltosyms.decode.decode._said).
    runtime_address: int | None = None
    reliable: bool = True  # False: a `? ` entry, a word of the stack the unwinder passed


@dataclass(frozen=True, slots=True, kw_only=True)
class SectionPlace:
    """A place in a module as objdump and the kernel's section symbols name it:
    ``.text+0x32a``, ``.text.lkdtm_WARNING+0xa``. A module has no link address a user can
    look up (ltosyms lays its sections out privately, :mod:`ltosyms.elf.image`)."""

    section: str
    offset: int

    def __str__(self) -> str:
        return f"{self.section}+{self.offset:#x}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedFrame:
    """What a frame's address is: its symbol, call site and source locations."""

    module: str | None  # None: vmlinux
    notes: tuple[str, ...]
    # The defaults are a frame that resolved to nothing.
    symbol: Symbol | None = None  # the ELF symbol, when one candidate is left
    link_address: int | None = None  # symbol + offset: the IP or return address, link time
    call_site: CallSite | None = None  # return addresses: the call instruction ending there
    lookup_address: int | None = None  # what the source locations were looked up at
    not_return_address: bool = False  # a return address where no call ends: a stale `? ` slot
    ambiguous: bool = False
    candidates: tuple[Candidate, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    locations: tuple[SourceLocation, ...] = ()  # innermost first
    # The call at call_site named: `call at schedule_timeout+0x8f: call schedule`.
    named_call: NamedCall | None = None
    # A `? f+size/size` slot that is no return address: the start of the function after f,
    # a function pointer left on the stack (kthread's, pushed for kernel_thread()).
    function_pointer: Symbol | None = None
    # Module frames: where link_address is, by section (None in a vmlinux).
    place: SectionPlace | None = None
    # Module frames: where each candidate is, by section, in the order of ``candidates``.
    candidate_places: tuple[SectionPlace | None, ...] = ()
    # Ambiguous frames: the innermost source line of the frame in each candidate (None: no
    # line information), in the order of ``candidates``.
    candidate_lines: tuple[SourceLocation | None, ...] = ()
    # Ambiguous frames: the file each candidate was compiled in (copies of one static differ
    # by it), in the order of ``candidates``.
    candidate_units: tuple[str | None, ...] = ()
    # Ambiguous frames: the lines each candidate's code spans in its own source file (None:
    # no line information), in the order of ``candidates``.
    candidate_function_lines: tuple[FunctionLines | None, ...] = ()

    @property
    def resolved(self) -> bool:
        return self.symbol is not None


def unresolved(
    module: str | None, notes: Sequence[str], evidence: Sequence[Evidence] = ()
) -> ResolvedFrame:
    return ResolvedFrame(module=module, notes=tuple(notes), evidence=tuple(evidence))


class ImageResolver:
    """Frame resolution within one image (the vmlinux or one module)."""

    def __init__(self, context: ImageContext, rules: Sequence[CleanupRule]) -> None:
        self.context = context
        self.symbols = context.symbols
        self.image = context.image
        self.rules = tuple(rules)  # every naming era, the build's own first
        self.arch = context.image.machine
        # x86 return addresses name `address - 1` (%pB); arm64's bl is 4 bytes before.
        self.call_back = 4 if self.arch == "aarch64" else 1

    # The DWARF resolver and the call-site finder are made on first need: a warm decode takes
    # its frames from the index (ltosyms.decode.stored_frames) and needs neither.

    @property
    def dwarf(self) -> DwarfResolver | None:
        return self.context.dwarf

    @property
    def finder(self) -> CallSiteFinder:
        return self.context.finder

    @property
    def relocations(self) -> ModuleRelocations | None:
        """A module's relocations (the targets of its calls), read on first need."""
        return self.context.relocations

    def name_call(self, site: CallSite | None) -> NamedCall | None:
        """``site`` named: its function and offset, and the function it calls."""
        if site is None:
            return None
        return name_call(site, self.symbols, self.relocations)

    # -- machine-code evidence ----------------------------------------------------------------

    def call_at(self, return_address: int) -> CallSite | None:
        caller = self.symbols.lookup(return_address - self.call_back)
        start = caller.link_address if caller is not None else None
        try:
            return self.finder.call_ending_at(return_address, start)
        except InputError:
            return None

    def _call_test(self) -> CandidateTest:
        def test(candidate: Candidate) -> bool:
            # No instruction ending at candidate+offset (the address falls inside one, or
            # there is no code) rules the candidate out as surely as a non-call does.
            site = self.call_at(candidate.link_address)
            return site is not None and site.is_call

        return test

    def _instruction_start_test(self) -> CandidateTest:
        """An exact IP is where an instruction starts: a copy whose instructions (decoded
        from its start) step over that offset did not run there."""

        def test(candidate: Candidate) -> bool | None:
            start = candidate.symbol.link_address
            try:
                boundary = self.finder.boundary_at_or_after(start, candidate.link_address)
            except InputError:
                return None
            return None if boundary is None else boundary == candidate.link_address

        return test

    def _code_test(self, code: CodeBytes) -> CandidateTest:
        """docs/kernel-facts.md#code-line: the copy whose bytes match the printed ``Code:`` (boot
        patching aside) is the code that ran."""
        marker = code.marker_offset
        assert marker is not None

        def test(candidate: Candidate) -> bool | None:
            from ltosyms.disasm.compare import image_window

            try:
                window = image_window(
                    self.image,
                    candidate.link_address,
                    len(code.data),
                    marker,
                    self.symbols,
                    finder=self.finder,
                )
            except InputError:
                return False  # no code there at all
            match = self.compare_code(code, window, candidate.link_address)
            return None if match.verdict is CodeVerdict.UNKNOWN else match.is_match

        return test

    def compare_code(
        self, code: CodeBytes, window: ImageWindow, marker_link_address: int
    ) -> CodeMatch:
        """:func:`compare_code` of ``Code:`` bytes with this image's ``window`` at
        ``marker_link_address``, kept by the image (:attr:`ImageContext.code_matches`)."""
        from ltosyms.disasm.compare import compare_code

        assert code.marker_offset is not None
        marker = code.marker_offset
        return remembered(
            self.context.code_matches,
            (code.data, marker, normalize_arch(code.arch), marker_link_address),
            lambda: compare_code(code.data, marker, window, code.arch),
        )

    # -- resolution ---------------------------------------------------------------------------

    def resolve_named(self, query: FrameQuery, code: CodeBytes | None = None) -> NameResolution:
        """``code``: the ``Code:`` bytes printed for this exact IP, evidence among copies."""
        assert query.symbol is not None and query.offset is not None
        tests: list[tuple[EvidenceKind, str, CandidateTest]] = []
        if query.role is FrameRole.RETURN_ADDRESS:
            tests.append(
                (
                    EvidenceKind.CALL_AT_RETURN,
                    "a call ends at the return address",
                    self._call_test(),
                )
            )
        else:
            tests.append(
                (
                    EvidenceKind.INSTRUCTION_START,
                    "an instruction starts at the IP",
                    self._instruction_start_test(),
                )
            )
            if code is not None and code.data and code.marker_offset is not None:
                tests.append(
                    (
                        EvidenceKind.CODE_BYTES,
                        "Code: bytes equal the image's",
                        self._code_test(code),
                    )
                )
        return resolve_name(self.symbols, query.symbol, query.offset, query.size, self.rules, tests)

    def resolve_link_address(self, link_address: int, role: FrameRole) -> NameResolution:
        """A raw address (KASLR already removed): the symbol the kernel would print."""
        probe = link_address - self.call_back if role is FrameRole.RETURN_ADDRESS else link_address
        symbol = self.symbols.lookup(probe)
        if symbol is None:
            return NameResolution(candidates=(), evidence=())
        return NameResolution(
            candidates=(Candidate(symbol=symbol, link_address=link_address),), evidence=()
        )

    def finish(
        self,
        query: FrameQuery,
        resolution: NameResolution,
        notes: list[str],
    ) -> ResolvedFrame:
        """Call site and source locations for the one candidate left (or none for many)."""
        # What resolving needs beyond the records: a decode of stored frames never imports it.
        from ltosyms.elf.bug_table import bug_table, is_trap, with_bug_line
        from ltosyms.names.copies import copy_description

        module = query.module
        if not resolution.candidates:
            # Why nothing fits (a printed size no candidate has) is the frame's answer.
            notes.extend(
                f"unresolved: {e.detail}"
                for e in resolution.evidence
                if e.kind is EvidenceKind.KALLSYMS_SIZE and e.candidates_before
            )
            return unresolved(module, notes, resolution.evidence)
        if resolution.ambiguous:
            # The candidates are listed once, with their evidence (the frame's own lines).
            return ResolvedFrame(
                module=module,
                ambiguous=True,
                candidates=resolution.candidates,
                evidence=resolution.evidence,
                notes=tuple(notes),
                candidate_places=tuple(
                    self.place(c.link_address, c.symbol) for c in resolution.candidates
                ),
                candidate_lines=tuple(
                    self._line_of(query, c.link_address) for c in resolution.candidates
                ),
                candidate_units=self._units_of(resolution.candidates),
                candidate_function_lines=tuple(
                    self._function_lines_of(c) for c in resolution.candidates
                ),
            )
        candidate = resolution.candidates[0]
        # One candidate is left by name and size: a machine-code test that rejected it too
        # (candidates._narrow) is reported by its own consequence (not a return address, the
        # Code: comparison), the symbol is no pick.
        symbol, link_address = candidate.symbol, candidate.link_address
        named_at = len(notes)  # where the note on the symbol's name goes, before the others
        call_site = None
        not_return_address = False
        lookup_address: int | None = link_address
        function_pointer = None
        if query.role is FrameRole.RETURN_ADDRESS:
            call_site = self.call_at(link_address)
            function_pointer = self._function_at(query, link_address)
            if function_pointer is not None:
                # The next function's start: a call ending here is the function's last
                # instruction, one that does not return (__stack_chk_fail); a `? ` slot
                # holding this address is the pointer far more often (do_splice_direct
                # passes direct_splice_actor).
                if call_site is not None and call_site.is_call:
                    named = self.name_call(call_site)
                    call = str(named) if named is not None else call_site.mnemonic
                    notes.append(f"the call ending here ({call}) does not return")
                not_return_address = True
                call_site = None
                lookup_address = None  # the pointed-to function has no line to give
            elif call_site is not None and call_site.is_call:
                lookup_address = call_site.link_address
            else:
                not_return_address = True
                call_site = None
                lookup_address = link_address - self.call_back
                notes.append("not a return address: no call ends here")
        # What an LTO or compiler copy is, said once in plain words (not for a pointer to the
        # next function: the frame is not in this one).
        description = copy_description(symbol.name)
        if query.symbol is not None and symbol.name != query.symbol:
            notes.insert(
                named_at, f"ELF name {symbol.name}" + (f": {description}" if description else "")
            )
        elif description is not None and function_pointer is None:
            notes.insert(named_at, f"{symbol.name}: {description}")
        locations: tuple[SourceLocation, ...] = ()
        in_data = query.role is FrameRole.EXACT_IP and self._is_data(symbol)
        if in_data:
            # lkdtm EXEC_DATA: the CPU was made to run a data object (and faulted on NX).
            notes.append(
                f"the IP is in data object {symbol.name} ({symbol.section}): executing data"
            )
        if self.dwarf is not None and lookup_address is not None:
            try:
                locations = self.dwarf.locations(lookup_address)
            except DwarfError as error:
                # The symbol stands on the symbol table alone: DWARF that cannot be read takes
                # the source lines away, not the frame.
                notes.append(f"no source lines: {error}")
            else:
                if not locations and not in_data:
                    notes.append("no line information at this address")
        locations = self._named_as_kallsyms(locations, symbol)
        if query.role is FrameRole.EXACT_IP and is_trap(self.image, link_address):
            # A WARN/BUG trap: the line is the one the kernel printed (the bug table's).
            entry = bug_table(self.image).at(link_address)
            if entry is not None:
                locations, bug_note = with_bug_line(entry, locations)
                if bug_note is not None:
                    notes.append(bug_note)
        return ResolvedFrame(
            module=module,
            symbol=symbol,
            link_address=link_address,
            call_site=call_site,
            lookup_address=lookup_address,
            not_return_address=not_return_address,
            ambiguous=False,
            candidates=resolution.candidates,
            evidence=resolution.evidence,
            locations=locations,
            notes=tuple(notes),
            named_call=self.name_call(call_site),
            function_pointer=function_pointer,
            place=self.place(link_address, symbol),
            candidate_places=tuple(
                self.place(c.link_address, c.symbol) for c in resolution.candidates
            ),
        )

    def _line_of(self, query: FrameQuery, link_address: int) -> SourceLocation | None:
        """The innermost source line of ``link_address`` taken as the frame's address."""
        if self.dwarf is None:
            return None
        back = self.call_back if query.role is FrameRole.RETURN_ADDRESS else 0
        try:
            locations = self.dwarf.locations(link_address - back)
        except DwarfError:
            return None
        return locations[0] if locations else None

    def _function_lines_of(self, candidate: Candidate) -> FunctionLines | None:
        """The lines the candidate's function spans in its file: which copy of a static or
        of a specialized function it is, in the developer's terms."""
        if self.dwarf is None:
            return None
        try:
            return self.dwarf.function_lines(candidate.symbol.link_address)
        except DwarfError:
            return None

    def _units_of(self, candidates: Sequence[Candidate]) -> tuple[str | None, ...]:
        if self.dwarf is None:
            return ()
        try:
            return tuple(self.dwarf.unit_files([c.symbol.link_address for c in candidates]))
        except DwarfError:
            return ()

    def _named_as_kallsyms(
        self, locations: tuple[SourceLocation, ...], symbol: Symbol
    ) -> tuple[SourceLocation, ...]:
        """The outermost entry named by the frame's symbol when the symbol table named it by
        another alias at the same start: llvm-symbolizer's rule takes the greatest name
        (the weak ``alloc_bootmem_huge_page``), kallsyms prints the strong
        ``__alloc_bootmem_huge_page`` (scripts/kallsyms.c compare_symbols(): non-weak first)."""
        if not locations:
            return locations
        outer = locations[-1]
        if outer.inlined or outer.function is None or outer.function == symbol.name:
            return locations
        if outer.function not in self.alias_names(symbol):
            return locations
        return (*locations[:-1], replace(outer, function=symbol.name))

    def _function_at(self, query: FrameQuery, link_address: int) -> Symbol | None:
        """The function starting at ``link_address`` when the frame is printed at the end of
        the function before it (``? f+size/size``): the slot holds a pointer to that
        function, and %pB names it by the previous one (lib/vsprintf.c symbol_string() ->
        sprint_backtrace() looks up address - 1). Only for ``? `` entries: a reliable frame
        there is a call that does not return, still running."""
        if query.reliable or query.offset is None or query.offset != query.size:
            return None
        if not query.offset:
            return None
        symbol = self.symbols.lookup(link_address)
        if symbol is None or symbol.link_address != link_address or not symbol.is_function:
            return None
        return symbol

    def place(self, link_address: int | None, symbol: Symbol | None = None) -> SectionPlace | None:
        """``link_address`` as ``section+offset`` in a module (None in a vmlinux, whose link
        addresses are the ones objdump and System.map print); ``symbol``'s section when no
        section with bytes holds it (``.bss``: lkdtm's data_area)."""
        if link_address is None or not self.image.is_module:
            return None
        section = self.image.section_at(link_address)
        if section is None and symbol is not None and symbol.section:
            section = self.image.get_section(symbol.section)
        if section is None:
            return None
        return SectionPlace(section=section.name, offset=link_address - section.link_address)

    def _is_data(self, symbol: Symbol) -> bool:
        section = self.image.get_section(symbol.section)
        return section is not None and section.is_alloc and not section.is_exec

    def call_targets(self, site: CallSite) -> frozenset[int] | None:
        """The functions a call can enter, None when the code does not say (indirect calls,
        retpoline thunks, static-call trampolines, a module's calls into the kernel)."""
        if site.kind is not CallKind.DIRECT:
            return None
        targets = frozenset(
            t for t in (site.target_link_address, *site.possible_targets) if t is not None
        )
        if not targets and self.image.is_module:
            # The displacement is a relocation: it names the module's own callee.
            named = self.name_call(site)
            if named is not None and named.target.kind is TargetKind.DIRECT:
                address = named.target.link_address
                targets = frozenset(() if address is None else (address,))
        if not targets:
            return None
        for target in targets:
            symbol = self.symbols.lookup(target)
            # include/linux/static_call_types.h STATIC_CALL_TRAMP_PREFIX: the trampoline
            # jumps to (or, with HAVE_STATIC_CALL_INLINE, the site is rewritten to call) the
            # current target, which the image does not know.
            if symbol is not None and symbol.name.startswith(STATIC_CALL_TRAMPOLINE_PREFIX):
                return None
        return targets

    def alias_names(self, symbol: Symbol) -> frozenset[str]:
        """The names of ``symbol`` and of its aliases (the kept symbols at its start)."""
        return frozenset(s.name for s in self.symbols.symbols_at(symbol.link_address)) | {
            symbol.name
        }

    def call_target_test(
        self, callee: ResolvedFrame, callee_names: frozenset[str] | None = None
    ) -> CandidateTest | None:
        """Cross-frame evidence: the call at the return address targets the callee. A
        module's call into the kernel names its callee by the relocation's symbol: compared
        with a vmlinux callee by name (the loader resolves it by that name), any of
        ``callee_names`` (the callee's aliases; its own name when not given)."""
        if callee.symbol is None:
            return None
        callee_symbol = callee.symbol
        names = callee_names or frozenset({callee_symbol.name})
        into_kernel = self.image.is_module and callee.module is None

        def test(candidate: Candidate) -> bool | None:
            site = self.call_at(candidate.link_address)
            if site is None or not site.is_call:
                return False
            named = self.name_call(site) if self.image.is_module else None
            if named is not None and named.target.kind is TargetKind.DIRECT:
                if named.target.link_address is None:
                    # A call into the kernel, by the name the loader resolves.
                    target = named.target
                    return into_kernel and target.symbol in names and not target.offset
                if into_kernel:
                    return False  # the call enters the module itself
            elif into_kernel:
                return None  # indirect call: says nothing about the target
            targets = self.call_targets(site)
            if targets is None:
                return None  # indirect call: says nothing about the target
            return callee_symbol.link_address in targets

        return test

    def callee_test(self, caller: ResolvedFrame) -> CandidateTest | None:
        """Cross-frame evidence the other way: the callee is the function the caller's call
        enters (a direct call names one copy of a duplicated static)."""
        if caller.symbol is None or caller.call_site is None:
            return None
        targets = self.call_targets(caller.call_site)
        if targets is None:
            return None

        def test(candidate: Candidate) -> bool:
            return candidate.symbol.link_address in targets

        return test


def narrow_by_callee(
    resolver: ImageResolver,
    resolution: NameResolution,
    callee: ResolvedFrame,
    callee_names: frozenset[str] | None = None,
) -> NameResolution:
    test = resolver.call_target_test(callee, callee_names)
    if test is None or not resolution.ambiguous:
        return resolution
    return narrow_further(
        resolution,
        EvidenceKind.CALL_TARGET,
        f"call target is {callee.symbol.name}" if callee.symbol else "call target",
        test,
    )


def narrow_by_caller(
    resolver: ImageResolver, resolution: NameResolution, caller: ResolvedFrame
) -> NameResolution:
    test = resolver.callee_test(caller)
    if test is None or not resolution.ambiguous:
        return resolution
    assert caller.symbol is not None and caller.call_site is not None
    where = (
        str(caller.named_call.site)
        if caller.named_call is not None
        else f"{caller.symbol.name} {caller.call_site.link_address:#x}"
    )
    return narrow_further(resolution, EvidenceKind.CALL_TARGET, f"called at {where}", test)
