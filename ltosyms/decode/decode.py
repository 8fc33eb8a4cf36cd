"""Decode parsed oops reports against a vmlinux (and modules): the ``decode`` pipeline.

parse (:mod:`ltosyms.oops`) -> per-frame resolution (:mod:`ltosyms.decode.frames`) ->
KASLR offset -> raw-address frames -> cross-frame call-target evidence -> ``Code:`` listing
and comparison -> :class:`DecodedReport` records for the renderers.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ltosyms.context import ImageContext, ModuleSet
from ltosyms.decode.candidates import NameResolution
from ltosyms.decode.frames import (
    FrameQuery,
    ImageResolver,
    ResolvedFrame,
    narrow_by_callee,
    narrow_by_caller,
    unresolved,
)
from ltosyms.decode.stored_frames import Said, StoredFrames
from ltosyms.disasm.decoder import ADDRESS_MASK, normalize_arch
from ltosyms.disasm.records import (
    CodeAnalysis,
    CodeAnalysisKey,
    CodeReport,
    CodeVerdict,
)
from ltosyms.disasm.view import CodeView, ViewSource, marker_runtime_address
from ltosyms.elf.build_facts import choose_rule
from ltosyms.elf.symtab import Symbol
from ltosyms.errors import LtosymsError, MismatchError
from ltosyms.names.eras import CleanupRule, rules_in_order
from ltosyms.oops.records import CodeBytes, Frame, Report, Trace
from ltosyms.stores import remembered

log = logging.getLogger(__name__)


# Printed frames kept resolved across the reports of one log (a sysrq dump repeats the same
# scheduler frames for every task): a log of ever new frames empties the memo at this many.
NAMED_KEPT = 65_536

# A frame's identity within a log (see frame_key).
FrameKey = tuple[int, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodedFrame:
    """A printed frame with its resolution and its run-time address."""

    frame: Frame
    resolved: ResolvedFrame | None  # None: nothing to resolve (user-mode IP, [inline] line)
    # Where the frame's address was at run time, when the log gives it: printed, the link
    # address plus the KASLR offset (vmlinux), or a module section's runtime start known
    # from another frame of the report printed with its address.
    runtime_address: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodedTrace:
    """A call trace of the log with each entry decoded."""

    trace: Trace
    frames: tuple[DecodedFrame, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterValue:
    """A register of the dump named: ``RAX ffffffffc0327320 = lkdtm_WARNING [lkdtm]``."""

    register: str
    value: int
    symbol: str
    offset: int
    module: str | None  # None: vmlinux
    section: str | None  # the symbol's section (.text, .data, .rodata, ...)


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodedReport:
    """A report of the log decoded: its frames, traces, ``Code:`` and warnings."""

    report: Report
    ip_frames: tuple[DecodedFrame, ...]  # RIP:/pc :/lr : lines
    traces: tuple[DecodedTrace, ...]
    kaslr_offset: int | None
    code: CodeReport | None
    warnings: tuple[str, ...]
    mismatch: bool  # evidence says the vmlinux is not the crashed kernel
    # Values of the main register dump that point into the vmlinux or a module (text or
    # static data), when the KASLR offset or the module section's runtime start is known.
    register_values: tuple[RegisterValue, ...] = ()

    def iter_frames(self) -> Iterator[DecodedFrame]:
        """Every decoded frame in input order."""
        frames = [*self.ip_frames, *(f for t in self.traces for f in t.frames)]
        # A RIP line may be both the report's IP line and a trace's first entry: once.
        unique = {frame_key(f.frame): f for f in reversed(frames)}
        return iter(sorted(unique.values(), key=lambda f: f.frame.line))


@dataclass
class _Work:
    """Mutable state while one report is decoded."""

    report: Report
    resolved: dict[FrameKey, ResolvedFrame] = field(default_factory=dict)  # by frame_key()
    warnings: list[str] = field(default_factory=list)
    identity_mismatch: bool = False  # the log prints another build id or release


class Decoder:
    """Decodes reports against one vmlinux and a set of modules: the pipeline only.

    The images (:class:`~ltosyms.context.ImageContext`) keep their DWARF units, call sites and
    answers as long as they are open, so a log with hundreds of frames parses each DWARF unit
    and each function's code once; what they keep between runs is theirs to save.
    """

    def __init__(
        self,
        vmlinux: ImageContext,
        modules: ModuleSet | None = None,
        rule: CleanupRule | None = None,
    ) -> None:
        self.vmlinux = vmlinux
        self.modules = modules if modules is not None else ModuleSet()
        self.facts = vmlinux.facts
        self.banner = self.facts.banner
        # The name the kernel printed depends on its version and on clang LTO: the build's
        # own era (or ``rule``) is tried first, every other era too (ltosyms.names.eras).
        self.rule = rule or choose_rule(self.facts).rule
        self.rules = rules_in_order(self.rule)
        self._resolvers: dict[str, ImageResolver | None] = {}
        self._kept: dict[ImageResolver, StoredFrames] = {}  # by the resolver of their image
        # Printed frames resolved so far, by what the log says of them (see _resolve_named).
        self._named: dict[tuple[object, ...], ResolvedFrame] = {}
        self.warnings: list[str] = []
        if not vmlinux.image.has_dwarf():
            self.warnings.append(
                f"{vmlinux.image.path} has no DWARF: frames get symbol+offset, no source lines"
            )

    # -- images -------------------------------------------------------------------------------

    def resolver(
        self, module: str | None, build_id: str | None, warnings: list[str] | None = None
    ) -> ImageResolver | None:
        """The resolver of the vmlinux (``module`` None) or of a module; None when the module
        is not found. A module whose build id differs from the printed one is a warning."""
        key = "" if module is None else f"{module}@{build_id or ''}"
        if key in self._resolvers:
            return self._resolvers[key]
        resolver = None
        if module is None:
            resolver = ImageResolver(self.vmlinux, self.rules)
        else:
            try:
                loaded = self.modules.get(module, build_id)
            except MismatchError as error:
                if warnings is not None:
                    warnings.append(str(error))
                loaded = None
            if loaded is not None:
                resolver = ImageResolver(loaded, self.rules)
        self._resolvers[key] = resolver
        return resolver

    def _frames_kept(self, resolver: ImageResolver) -> StoredFrames:
        """The resolved frames kept in the index of ``resolver``'s image."""
        kept = self._kept.get(resolver)
        if kept is None:
            kept = self._kept[resolver] = StoredFrames(resolver.context, self.rule.name)
        return kept

    # -- one report ---------------------------------------------------------------------------

    def decode(self, report: Report) -> DecodedReport:
        work = _Work(report=report)
        self._check_identity(work)
        ip_frames = [line.frame for line in report.ip_lines if line.frame is not None]
        # Each frame once, by its key (a RIP line may also be a trace's first entry).
        by_key = {frame_key(f): f for f in ip_frames}
        for trace in report.traces:
            for frame in trace.frames:
                by_key[frame_key(frame)] = frame
        all_frames = list(by_key.items())
        # The Code: line belongs to the kernel-mode IP of the main register dump.
        dump = report.main_dump
        code_ip = dump.ip.frame if dump is not None and dump.ip is not None else None
        code_ip_key = frame_key(code_ip) if code_ip is not None else None
        # Each frame printed by name, with the Code: bytes printed for it and what it says
        # (_said), worked out once for the prefetch and the resolution.
        named: list[_Named] = []
        for key, frame in all_frames:
            if frame.symbol is not None and frame.offset is not None and not frame.inline:
                code_bytes = report.code if key == code_ip_key else None
                named.append((key, frame, code_bytes, _said(frame, code_bytes)))
        self._fetch_kept(named, work)
        for one in named:
            self._resolve_named(one, work)
        kaslr_offset = self._kaslr_offset(report, all_frames, work)
        for key, frame in all_frames:
            if frame.symbol is None and frame.runtime_address is not None and not frame.inline:
                self._resolve_raw(frame, key, kaslr_offset, work)
        for trace in report.traces:
            self._narrow_by_callees(trace, work)
            if trace.frames_not_kept:
                work.warnings.append(
                    f"trace at line {trace.first_line}: {trace.frames_not_kept} entries past "
                    f"the first {len(trace.frames)} are printed as read, not decoded (more "
                    "entries than any kernel stack holds)"
                )
        code = self._code(report, ip_frames, work, kaslr_offset)
        mismatch = self._judge_mismatch(all_frames, code, work)
        runtime = _RuntimeAddresses(kaslr_offset)
        for key, frame in all_frames:
            runtime.learn(frame.runtime_address, work.resolved.get(key))
        if code is not None and code.marker_runtime_address is not None and code_ip_key is not None:
            runtime.learn(code.marker_runtime_address, work.resolved.get(code_ip_key))

        def decoded(frame: Frame) -> DecodedFrame:
            resolved = work.resolved.get(frame_key(frame))
            return DecodedFrame(
                frame=frame,
                resolved=resolved,
                runtime_address=runtime.of(frame.runtime_address, resolved),
            )

        decoded_ip = tuple(decoded(f) for f in ip_frames)
        traces = tuple(
            DecodedTrace(trace=t, frames=tuple(decoded(f) for f in t.frames)) for t in report.traces
        )
        return DecodedReport(
            report=report,
            ip_frames=decoded_ip,
            traces=traces,
            kaslr_offset=kaslr_offset,
            code=code,
            warnings=tuple(work.warnings),
            mismatch=mismatch,
            register_values=self._register_values(report, runtime),
        )

    def decode_all(self, reports: Iterable[Report]) -> Iterator[DecodedReport]:
        for report in reports:
            yield self.decode(report)

    # -- steps --------------------------------------------------------------------------------

    def _check_identity(self, work: _Work) -> None:
        report = work.report
        build_id = self.vmlinux.build_id
        if report.build_id and build_id and report.build_id != build_id:
            work.identity_mismatch = True
            work.warnings.append(
                f"the log's kernel has build id {report.build_id}, the vmlinux {build_id}: "
                "wrong vmlinux"
            )
        if report.release and self.banner and report.release not in self.banner:
            work.identity_mismatch = True
            work.warnings.append(
                f"the log's kernel is {report.release}, the vmlinux says "
                f"'{self.banner[:80].strip()}': wrong vmlinux?"
            )

    @staticmethod
    def _query(frame: Frame) -> FrameQuery:
        return FrameQuery(
            symbol=frame.symbol,
            offset=frame.offset,
            size=frame.kallsyms_size,
            module=frame.module,
            module_build_id=frame.module_build_id,
            runtime_address=frame.runtime_address,
            role=frame.role,
            reliable=frame.reliable,
        )

    def _fetch_kept(self, named: list[_Named], work: _Work) -> None:
        """Read the stored resolutions of the report's named frames, one query per image
        (the frames resolved earlier in the run need none). Resolvers are made in the order
        _resolve_named makes them: a module's warning lands where it would."""
        wanted: dict[int, tuple[StoredFrames, list[Said]]] = {}
        for _key, frame, code, said in named:
            if code is None and said in self._named:
                continue
            resolver = self.resolver(frame.module, frame.module_build_id, work.warnings)
            if resolver is not None:
                kept = self._frames_kept(resolver)
                wanted.setdefault(id(kept), (kept, []))[1].append(said)
        for kept, saids in wanted.values():
            kept.prefetch(saids)

    def _resolve_named(self, named: _Named, work: _Work) -> None:
        # A sysrq dump prints the same scheduler frames for every task, a log may print one
        # crash thousands of times: frames that read the same (and carry no Code: bytes)
        # resolve the same, found by what the frame says before any record is made for it.
        # The index keeps them all, with the Code: bytes that were evidence.
        key, frame, code, said = named
        known = self._named.get(said) if code is None else None
        if known is None:
            query = self._query(frame)
            resolver = self.resolver(frame.module, frame.module_build_id, work.warnings)
            if resolver is None:
                reason = self.modules.error_for(frame.module or "") or "not found in --modules"
                known = unresolved(query.module, [f"module {frame.module}: {reason}"])
            else:
                kept = self._frames_kept(resolver)
                known = kept.get(said)
                if known is None:
                    try:
                        resolution = resolver.resolve_named(query, code)
                        known = resolver.finish(query, resolution, [])
                    except LtosymsError as error:
                        known = unresolved(query.module, [str(error)])
                    else:
                        kept.put(said, known)
            if code is None:
                if len(self._named) >= NAMED_KEPT:
                    self._named.clear()  # memory follows the report, not the log
                self._named[said] = known
        work.resolved[key] = known

    def _resolve_raw(
        self, frame: Frame, key: FrameKey, kaslr_offset: int | None, work: _Work
    ) -> None:
        query = self._query(frame)
        if frame.module is not None or frame.runtime_address is None:
            return
        if kaslr_offset is None:
            work.resolved[key] = unresolved(query.module, ["raw address and no KASLR offset known"])
            return
        resolver = self.resolver(None, None, work.warnings)
        assert resolver is not None
        link_address = (frame.runtime_address - kaslr_offset) & 0xFFFF_FFFF_FFFF_FFFF
        resolution = resolver.resolve_link_address(link_address, query.role)
        work.resolved[key] = resolver.finish(
            query, resolution, [f"raw address {frame.runtime_address:#x} - KASLR offset"]
        )

    def _register_values(
        self, report: Report, runtime: _RuntimeAddresses
    ) -> tuple[RegisterValue, ...]:
        """The registers of the main dump that hold an address of the vmlinux (KASLR offset
        known) or of a module section whose runtime start the report gives."""
        dump = report.main_dump
        if dump is None or dump.user_mode:
            return ()
        named = []
        kaslr_offset = runtime.kaslr_offset
        modules_placed = bool(runtime.section_starts)
        if kaslr_offset is None and not modules_placed:
            return ()  # no address of the report can be named
        for register, value in dump.registers:
            found = self._vmlinux_value(value, kaslr_offset)
            if found is None and modules_placed:
                found = self._module_value(value, runtime)
            if found is not None:
                symbol, offset, module = found
                named.append(
                    RegisterValue(
                        register=register,
                        value=value,
                        symbol=symbol.name,
                        offset=offset,
                        module=module,
                        section=symbol.section,
                    )
                )
        return tuple(named)

    def _vmlinux_value(
        self, value: int, kaslr_offset: int | None
    ) -> tuple[Symbol, int, str | None] | None:
        if kaslr_offset is None:
            return None
        link_address = (value - kaslr_offset) & ADDRESS_MASK
        image = self.vmlinux.image
        if image.section_at(link_address) is None:
            return None  # not in the image's text or data (.bss has no bytes to hold it)
        symbol = self.vmlinux.symbols.lookup(link_address)
        if symbol is None:
            return None
        return symbol, link_address - symbol.link_address, None

    def _module_value(
        self, value: int, runtime: _RuntimeAddresses
    ) -> tuple[Symbol, int, str | None] | None:
        for (module, section_name), start in runtime.section_starts.items():
            resolver = self.resolver(module, None)
            if resolver is None:
                continue
            section = resolver.image.get_section(section_name)
            if section is None or not start <= value < start + section.size:
                continue
            link_address = section.link_address + value - start
            symbol = resolver.symbols.lookup(link_address)
            if symbol is not None:
                return symbol, link_address - symbol.link_address, module
        return None

    def _kaslr_offset(
        self, report: Report, frames: list[tuple[FrameKey, Frame]], work: _Work
    ) -> int | None:
        """runtime - link from every vmlinux frame that prints both
        (docs/kernel-facts.md#kaslr-and-modules)."""
        votes: Counter[int] = Counter()
        for key, frame in frames:
            resolved = work.resolved.get(key)
            if (
                frame.runtime_address is not None
                and frame.module is None
                and resolved is not None
                and resolved.link_address is not None
            ):
                votes[(frame.runtime_address - resolved.link_address) & 0xFFFF_FFFF_FFFF_FFFF] += 1
        if votes:
            offset, count = votes.most_common(1)[0]
            if len(votes) > 1:
                work.warnings.append(
                    f"frames disagree on the KASLR offset; using {offset:#x} ({count} frames)"
                )
            return offset
        return report.kaslr_offset

    def _narrow_by_callees(self, trace: Trace, work: _Work) -> None:
        """Adjacent trace entries are callee and caller, and the caller's call enters the
        callee (docs/kernel-facts.md#call-instructions): an ambiguous caller is settled by which
        copy calls the resolved callee, an ambiguous callee by which copy the resolved caller's
        direct call enters. Only return-address entries made a call; a narrowing that leaves several
        copies still replaces the resolution, so that the copies listed are the ones left."""
        callee_frame: Frame | None = None
        callee_key: FrameKey | None = None
        resolved_of = work.resolved
        for frame in trace.frames:
            key = frame_key(frame)
            resolved = resolved_of.get(key)
            if resolved is None:
                continue
            callee = resolved_of.get(callee_key) if callee_key is not None else None
            # A module's call into the kernel counts too: its relocation names the callee.
            into_kernel = frame.module is not None and callee is not None and callee.module is None
            if (
                callee is not None
                and callee_frame is not None
                and frame.is_return_address
                and (callee.module == frame.module or into_kernel)
            ):
                resolver = self.resolver(frame.module, frame.module_build_id, work.warnings)
                if resolver is not None and resolved.ambiguous and callee.symbol is not None:
                    resolution = NameResolution(
                        candidates=resolved.candidates, evidence=resolved.evidence
                    )
                    # The loader finds a module's callee by name: any alias of the kernel's
                    # function (a module's `memset` is the `__memset` kallsyms prints).
                    kernel = self.resolver(None, None) if into_kernel else None
                    names = kernel.alias_names(callee.symbol) if kernel is not None else None
                    narrowed = narrow_by_callee(resolver, resolution, callee, names)
                    if narrowed.evidence != resolution.evidence:
                        resolved = resolver.finish(self._query(frame), narrowed, [])
                        resolved_of[key] = resolved
                elif (
                    resolver is not None
                    and not into_kernel
                    and callee.ambiguous
                    and resolved.symbol is not None
                ):
                    resolution = NameResolution(
                        candidates=callee.candidates, evidence=callee.evidence
                    )
                    narrowed = narrow_by_caller(resolver, resolution, resolved)
                    if narrowed.evidence != resolution.evidence and callee_key is not None:
                        query = self._query(callee_frame)
                        resolved_of[callee_key] = resolver.finish(query, narrowed, [])
            if frame.reliable:
                callee_frame, callee_key = frame, key

    def _code(
        self, report: Report, ip_frames: list[Frame], work: _Work, kaslr_offset: int | None
    ) -> CodeReport | None:
        """Disassemble ``Code:`` and compare it with the image at the resolved IP
        (docs/kernel-facts.md#code-line).

        The result is a pure function of the printed bytes, the IP's link address and the
        image: the image keeps it (:attr:`ImageContext.code_analyses`), so the same crash
        decoded again needs no disassembler."""
        code = report.code
        if code is None or (code.marker_offset is None and not code.unavailable):
            return None
        ip = next((f for f in ip_frames if f.exact_ip), None)
        resolved = work.resolved.get(frame_key(ip)) if ip is not None else None
        marker_link_address = resolved.link_address if resolved is not None else None
        resolver = None
        if ip is not None and marker_link_address is not None:
            resolver = self.resolver(ip.module, ip.module_build_id, work.warnings)
        context = resolver.context if resolver is not None else self.vmlinux
        if code.arch not in ("x86_64", "aarch64") and not code.unavailable:
            return None
        image_name = (ip.module or "vmlinux") if resolver is not None and ip is not None else None
        runtime = marker_runtime_address(
            context.image.machine,
            code.unavailable_address,
            ip.runtime_address if ip is not None else None,
            marker_link_address,
            kaslr_offset,
            context.image.is_module,
        )
        if code.unavailable or code.marker_offset is None:
            # "Code: Unable to access opcode bytes": the image's instructions around the IP.
            if resolver is None or marker_link_address is None or image_name is None:
                return None
            try:
                view = _image_view(resolver, marker_link_address, image_name)
            except LtosymsError as error:
                work.warnings.append(f"Code: not listed from {image_name}: {error}")
                return None
            if view is None:
                return None
            return CodeReport(
                listing=view.listing,
                match=None,
                image=image_name,
                view=view,
                marker_runtime_address=runtime,
            )
        key = (
            image_name,
            code.data,
            code.marker_offset,
            normalize_arch(code.arch),
            marker_link_address,
        )
        analysis = remembered(
            context.code_analyses,
            key,
            lambda: _analyse_code(code, marker_link_address, resolver, image_name),
        )
        work.warnings.extend(analysis.warnings)
        view = None
        if resolver is not None and analysis.report.listing is not None:
            try:
                view = _log_view(resolver, code, analysis.report, resolved, key)
            except LtosymsError as error:
                work.warnings.append(f"Code: not labelled: {error}")
        stored = analysis.report
        return CodeReport(  # dataclasses.replace() costs as much as the rest of this step
            listing=stored.listing,
            match=stored.match,
            image=stored.image,
            view=view,
            marker_runtime_address=runtime,
        )

    def _judge_mismatch(
        self, frames: list[tuple[FrameKey, Frame]], code: CodeReport | None, work: _Work
    ) -> bool:
        if (
            code is not None
            and code.match is not None
            and code.match.verdict is (CodeVerdict.MISMATCH)
        ):
            return True
        if work.identity_mismatch:
            return True
        # Printed sizes that fit no symbol of that name: most of them means another build.
        sized = failed = 0
        for key, frame in frames:
            resolved = work.resolved.get(key)
            if resolved is None or frame.kallsyms_size is None or frame.module is not None:
                continue
            sized += 1
            if not resolved.candidates or any(e.candidates_after == 0 for e in resolved.evidence):
                failed += 1
        if sized >= 3 and failed * 2 > sized:
            work.warnings.append(
                f"{failed} of {sized} vmlinux frames fit no symbol of their name and size: "
                "the vmlinux is not the crashed kernel"
            )
            return True
        return False


def _log_view(
    resolver: ImageResolver,
    code: CodeBytes,
    report: CodeReport,
    resolved: ResolvedFrame | None,
    key: CodeAnalysisKey,
) -> CodeView:
    """The view of a ``Code:`` listing (labels, named targets), kept by the image
    (:attr:`ImageContext.code_views`)."""

    def make() -> CodeView:
        from ltosyms.disasm.code_view import code_view
        from ltosyms.disasm.compare import image_window

        assert report.listing is not None and code.marker_offset is not None
        window = None
        if report.listing.marker_link_address is not None:
            try:
                window = image_window(
                    resolver.image,
                    report.listing.marker_link_address,
                    len(code.data),
                    code.marker_offset,
                    resolver.symbols,
                    finder=resolver.finder,
                )
            except LtosymsError:
                window = None
        symbol = resolved.symbol if resolved is not None else None
        return code_view(
            report.listing,
            resolver.image,
            resolver.symbols,
            resolver.relocations,
            window,
            report.match,
            symbol,
        )

    return remembered(resolver.context.code_views, key, make)


def _image_view(resolver: ImageResolver, marker_link_address: int, name: str) -> CodeView | None:
    """The image's instructions around the IP, for a ``Code:`` line without bytes (None: no
    function holds the IP)."""

    def make() -> CodeView:
        from ltosyms.disasm.code_view import image_code_view

        view = image_code_view(
            resolver.image, resolver.symbols, resolver.relocations, marker_link_address, name
        )
        return view if view is not None else CodeView(source=ViewSource.IMAGE, rows=(), note=None)

    view = remembered(resolver.context.image_code_views, (name, marker_link_address), make)
    return None if view.is_empty else view


def _analyse_code(
    code: CodeBytes,
    marker_link_address: int | None,
    resolver: ImageResolver | None,
    image_name: str | None,
) -> CodeAnalysis:
    """The listing of ``code`` and, with the IP's image, its comparison with that image."""
    from ltosyms.disasm.compare import compare_code, image_window
    from ltosyms.disasm.listing import disassemble_code

    assert code.marker_offset is not None
    warnings: list[str] = []
    window = None
    if resolver is not None and marker_link_address is not None:
        try:
            window = image_window(
                resolver.image,
                marker_link_address,
                len(code.data),
                code.marker_offset,
                resolver.symbols,
                finder=resolver.finder,
            )
        except LtosymsError as error:
            warnings.append(f"Code: not compared: {error}")
    match = None
    if window is not None and resolver is not None and marker_link_address is not None:
        # Kept as part of the analysis: not stored again on its own.
        match = compare_code(code.data, code.marker_offset, window, code.arch)
        if match.verdict is CodeVerdict.MISMATCH:
            warnings.append(
                f"Code: bytes differ from {image_name} at the RIP in {match.unexplained} "
                f"bytes: the {image_name} is not the crashed kernel"
            )
    try:
        listing = disassemble_code(
            code.data,
            code.marker_offset,
            code.arch,
            marker_link_address,
            window.boundaries if window is not None else (),
            # The image's padding only where its bytes are the ones that ran.
            window.padding if window is not None and match is not None and match.is_match else (),
        )
    except LtosymsError as error:
        warnings.append(f"Code: cannot be disassembled: {error}")
        listing = None
    return CodeAnalysis(
        report=CodeReport(listing=listing, match=match, image=image_name),
        warnings=tuple(warnings),
    )


class _RuntimeAddresses:
    """Runtime addresses of one report's frames. A vmlinux address moves by the KASLR offset;
    a module's sections are placed one by one (kernel/module/main.c layout_sections(),
    move_module()), so one runtime address of a section gives that section's start only."""

    def __init__(self, kaslr_offset: int | None) -> None:
        self.kaslr_offset = kaslr_offset
        self.section_starts: dict[tuple[str, str], int] = {}  # (module, section) -> start

    def learn(self, runtime_address: int | None, resolved: ResolvedFrame | None) -> None:
        if runtime_address is None or resolved is None or resolved.module is None:
            return
        place = resolved.place
        if place is not None:
            start = (runtime_address - place.offset) & ADDRESS_MASK
            self.section_starts.setdefault((resolved.module, place.section), start)

    def of(self, printed: int | None, resolved: ResolvedFrame | None) -> int | None:
        if printed is not None:
            return printed
        if resolved is None or resolved.link_address is None:
            return None
        if resolved.module is None:
            if self.kaslr_offset is None:
                return None
            return (resolved.link_address + self.kaslr_offset) & ADDRESS_MASK
        place = resolved.place
        if place is None:
            return None
        start = self.section_starts.get((resolved.module, place.section))
        return None if start is None else (start + place.offset) & ADDRESS_MASK


# A frame printed by name: its key, the frame, the Code: bytes printed for it (the IP of the
# main register dump), what it says (_said).
_Named = tuple[FrameKey, Frame, CodeBytes | None, Said]


def _said(frame: Frame, code: CodeBytes | None = None) -> Said:
    """What the log says of a named frame, and of the code at it when the report printed its
    ``Code:`` bytes: frames that say the same resolve the same. Not where it ran: resolving
    works on link addresses, so the frame printed by another boot (another KASLR offset, other
    module addresses) is the same frame; its runtime address is worked out apart
    (_RuntimeAddresses)."""
    said = (
        frame.symbol,
        frame.offset,
        frame.kallsyms_size,
        frame.module,
        frame.module_build_id,
        frame.role,
        frame.reliable,
    )
    if code is None:
        return said
    return (*said, code.data.hex(), code.marker_offset, code.arch)


def frame_key(frame: Frame) -> FrameKey:
    """A frame's identity within a log: a RIP line shared by a report and a trace is one."""
    return (frame.line, frame.raw_text)
