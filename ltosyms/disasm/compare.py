"""Do the ``Code:`` bytes equal the image at the resolved RIP?

Equal bytes prove that the vmlinux (or module) is the code that crashed and pick among
duplicate candidates (docs/kernel-facts.md#code-line). Bytes the kernel rewrites at boot or load
time are no mismatch; a difference is explained when

1. it lies in a patch site the image's own tables list (:mod:`ltosyms.disasm.patching`);
2. it lies inside an instruction that patching produces or replaces, on either side: a call or
   jump (static calls, thunks, ``__fentry__``, jump labels), a NOP of any length (jump labels,
   alternatives, ftrace), and on the run-time side ``ret``/``int3`` (return thunks),
   ``lfence`` (retpolines), ``stac``/``clac`` (SMAP);
3. it lies inside the immediate or displacement of two otherwise equal instructions, where a
   module's ``.ko`` holds zero (the loader writes the address, RELA) or a vmlinux's value
   differs by a multiple of 2 MiB (KASLR);
4. on arm64, per word: a HINT/NOP on either side, B/BL with another offset, and in modules
   ADRP/ADD/LDR/STR/MOVZ/MOVK with the same registers (the loader's relocations).

Everything else counts as an unexplained difference.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ltosyms.disasm.callsite import CallSiteFinder, finder_for
from ltosyms.disasm.decoder import (
    AARCH64,
    ARM64_INSTRUCTION,
    X86_64,
    X86_MAX_INSTRUCTION,
    normalize_arch,
    x86_operand_fields,
)
from ltosyms.disasm.listing import decode_anchored
from ltosyms.disasm.records import (
    CodeMatch,
    CodeVerdict,
    PatchedSite,
    PatchReason,
)
from ltosyms.elf.image import KernelImage, Section
from ltosyms.elf.symtab import SymbolTable


@dataclass(frozen=True, slots=True, kw_only=True)
class PatchedRange:
    """A patch site of the image, in indexes of the Code: bytes."""

    start: int
    length: int
    reason: PatchReason


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageWindow:
    """Image bytes lined up with a ``Code:`` line: ``data[0]`` is Code: byte ``code_offset``."""

    data: bytes
    code_offset: int
    patched: tuple[PatchedRange, ...] = ()
    is_module: bool = False
    # Indexes of Code: bytes where the image has an instruction start (needs symbols); they
    # may be negative, in the context before the line.
    boundaries: tuple[int, ...] = ()
    # Image bytes just before and after the Code: line (when the image covers its ends).
    before: bytes = b""
    after: bytes = b""
    # [start, end) indexes of Code: bytes that are no function's code in the image: past a
    # function's ELF end before the next symbol (alignment), or between module sections.
    padding: tuple[tuple[int, int], ...] = ()


# Largest gap between two module text sections that can be alignment padding.
_MAX_MODULE_GAP = 4096


def image_window(
    image: KernelImage,
    marker_link_address: int,
    code_length: int,
    marker_index: int,
    symbols: SymbolTable | None = None,
    *,
    finder: CallSiteFinder | None = None,
) -> ImageWindow:
    """The image's bytes under a ``Code:`` line whose faulting byte is at
    ``marker_link_address``, with the image's patch sites in that range and, given the
    image's ``symbols``, the instruction starts the image knows there (function starts, and
    the first instruction of the window found by a sweep from its function's start).
    ``finder`` is the image's call-site finder, whose sweeps and patch tables are used (the
    image's shared one when not given).

    A vmlinux is read within the section of the marker. A module's text sections are laid out
    by :mod:`ltosyms.elf.image` as the loader does, so neighbouring text sections are joined,
    the gaps between them read as zero: the loader's allocation is zeroed
    (kernel/module/main.c ``move_module``), and clang LTO modules have one section per function.
    Up to 15 bytes on each side are kept as context, so that instructions cut by the ends of
    the Code: line can be decoded whole.
    """
    first = marker_link_address - marker_index
    last = first + code_length
    section = image.section_at(marker_link_address)
    if section is None:
        # .bss or no section at all: nothing to compare (lkdtm EXEC_DATA runs module data).
        return ImageWindow(data=b"", code_offset=0, is_module=image.is_module)
    low_limit, high_limit = first - X86_MAX_INSTRUCTION, last + X86_MAX_INSTRUCTION
    pieces = [section]
    if image.is_module and section.is_exec:
        texts = sorted(
            (s for s in image.sections if s.is_alloc and s.is_exec and s.has_bits and s.size),
            key=lambda s: s.link_address,
        )
        low = high = texts.index(section)
        while low > 0 and texts[low].link_address > low_limit:
            if not _joins(texts[low - 1], texts[low]):
                break
            low -= 1
        while high + 1 < len(texts) and texts[high].end_address < high_limit:
            if not _joins(texts[high], texts[high + 1]):
                break
            high += 1
        pieces = texts[low : high + 1]
    start = max(low_limit, pieces[0].link_address)
    end = min(high_limit, pieces[-1].end_address)
    data = bytearray(end - start)
    for piece in pieces:
        low_address = max(start, piece.link_address)
        high_address = min(end, piece.end_address)
        if low_address < high_address:
            data[low_address - start : high_address - start] = image.read(
                low_address, high_address - low_address
            )
    inner_start, inner_end = max(start, first), min(end, last)
    finder = finder if finder is not None else finder_for(image)
    patched = tuple(
        PatchedRange(start=site.link_address - first, length=site.length, reason=site.reason)
        for site in finder.sites.overlapping(start, end)
    )
    boundaries = (
        () if symbols is None else _known_boundaries(finder, image, symbols, start, end, first)
    )
    padding = () if symbols is None else _padding(image, symbols, first, last)
    return ImageWindow(
        data=bytes(data[inner_start - start : inner_end - start]),
        code_offset=inner_start - first,
        patched=patched,
        is_module=image.is_module,
        boundaries=boundaries,
        before=bytes(data[: inner_start - start]) if inner_start == first else b"",
        after=bytes(data[inner_end - start :]) if inner_end == last else b"",
        padding=padding,
    )


def _padding(
    image: KernelImage, symbols: SymbolTable, first: int, last: int
) -> tuple[tuple[int, int], ...]:
    """Ranges of [first, last) that hold no function's code, as offsets from ``first``:
    between a function's ELF end and the next symbol kallsyms keeps (int3, NOPs or zeros the
    linker or assembler aligned with), and outside every section of a module (the loader's
    zeroed allocation between sections, kernel/module/main.c ``move_module``). Functions of
    size 0 (assembly labels) say nothing about where their code ends."""
    found: list[tuple[int, int]] = []
    address = first
    while address < last:
        section = image.section_at(address)
        if section is None or not section.is_exec:
            following = _next_section_start(image, address)
            end = last if following is None else min(following, last)
            if image.is_module and section is None:
                found.append((address, end))
            address = end
            continue
        symbol = symbols.lookup(address)
        if symbol is not None:
            symbol = symbols.widest_alias(symbol)
        following = symbols.next_start_after(address)
        limit = min(last, section.end_address, following if following is not None else last)
        if symbol is None or not symbol.elf_size or not symbol.is_function:
            address = limit
            continue
        code_end = symbol.link_address + symbol.elf_size
        if address >= code_end:
            found.append((address, limit))
            address = limit
        else:
            address = min(code_end, limit)
    return tuple((start - first, end - first) for start, end in found if start < end)


def _next_section_start(image: KernelImage, link_address: int) -> int | None:
    starts = [
        s.link_address
        for s in image.sections
        if s.is_alloc and s.has_bits and s.size and s.link_address > link_address
    ]
    return min(starts, default=None)


def _known_boundaries(
    finder: CallSiteFinder,
    image: KernelImage,
    symbols: SymbolTable,
    first: int,
    last: int,
    origin: int,
) -> tuple[int, ...]:
    """Instruction starts in [first, last), as offsets from ``origin`` (the Code: line's
    first byte): function starts, and the first instruction at or after ``first`` and
    ``origin`` found by sweeping their functions."""
    if normalize_arch(image.machine) != X86_64:
        return ()  # fixed-width instructions: the marker fixes every boundary
    found = set()
    for point in {first, origin}:
        symbol = symbols.lookup(point)
        if symbol is not None:
            boundary = finder.boundary_at_or_after(symbol.link_address, point)
            if boundary is not None and boundary < last:
                found.add(boundary - origin)
    address = first
    symbol = symbols.lookup(address)
    while symbol is not None and symbol.kallsyms_size:
        following = symbol.link_address + symbol.kallsyms_size
        if not address < following < last:
            break
        found.add(following - origin)
        address = following
        symbol = symbols.lookup(address)
    return tuple(sorted(found))


def _joins(left: Section, right: Section) -> bool:
    same_part = left.name.startswith(".init") == right.name.startswith(".init")
    return same_part and 0 <= right.link_address - left.end_address < _MAX_MODULE_GAP


def compare_code(
    code: bytes,
    marker_index: int,
    image_bytes: bytes | ImageWindow,
    arch: str,
    *,
    image_offset: int = 0,
    image_is_module: bool = False,
    patched: Sequence[PatchedRange] = (),
    boundaries: Sequence[int] = (),
) -> CodeMatch:
    """Compare ``Code:`` bytes with the image's bytes at the same addresses.

    ``image_bytes[k]`` lines up with ``code[image_offset + k]``; an :class:`ImageWindow`
    (from :func:`image_window`) carries its offset, patch sites, known instruction starts,
    context bytes and kind itself. Bytes outside the image's range are not compared.
    """
    arch = normalize_arch(arch)
    before = after = b""
    if isinstance(image_bytes, ImageWindow):
        window = image_bytes
        image_bytes, image_offset = window.data, window.code_offset
        image_is_module, patched = window.is_module, window.patched
        boundaries, before, after = window.boundaries, window.before, window.after
    code = bytes(code)
    low = max(image_offset, 0)
    high = min(image_offset + len(image_bytes), len(code))
    if not code or high <= low or not 0 <= marker_index < len(code):
        return CodeMatch(
            verdict=CodeVerdict.UNKNOWN,
            compared=0,
            differing=0,
            unexplained_offsets=(),
            patched_sites=(),
        )
    differing = [i for i in range(low, high) if code[i] != image_bytes[i - image_offset]]
    if not differing:
        return CodeMatch(
            verdict=CodeVerdict.MATCH,
            compared=high - low,
            differing=0,
            unexplained_offsets=(),
            patched_sites=(),
        )
    # The image side as long as the Code: line (its bytes where known, the Code: bytes
    # elsewhere), so both sides decode with the same anchor.
    image_view = code[:low] + bytes(image_bytes[low - image_offset : high - image_offset])
    image_view += code[high:]
    # Both sides get the image's context bytes, so instructions cut by the ends of the line
    # decode whole; indexes below are shifted by the context before the line.
    shift = len(before)
    rules = (_explain_arm64 if arch == AARCH64 else _explain_x86)(
        _Sides(
            code=before + code + after, image=before + image_view + after, is_module=image_is_module
        ),
        marker_index + shift,
        [index + shift for index in differing],
        [boundary + shift for boundary in boundaries],
    )
    sites: dict[tuple[int, PatchReason], PatchedSite] = {}
    unexplained = []
    for index, rule in zip(differing, rules, strict=True):
        start, length, reason = rule[0] - shift, rule[1], rule[2]
        for site in patched:
            if site.start <= index < site.start + site.length:
                start, length, reason = site.start, site.length, site.reason
                break
        if reason is None:
            unexplained.append(index - marker_index)
        else:
            sites.setdefault(
                (start, reason),
                PatchedSite(offset=start - marker_index, length=length, reason=reason),
            )
    return CodeMatch(
        verdict=CodeVerdict.MISMATCH if unexplained else CodeVerdict.PATCHED,
        compared=high - low,
        differing=len(differing),
        unexplained_offsets=tuple(unexplained),
        patched_sites=tuple(sites.values()),
    )


_Rule = tuple[int, int, PatchReason | None]  # start index, length, reason (None: unexplained)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Sides:
    code: bytes  # the Code: bytes
    image: bytes  # the image's bytes at the same addresses, as long
    is_module: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class _Instruction:
    start: int
    size: int
    mnemonic: str  # "" for bytes that decode to nothing
    fields: tuple[tuple[int, int], ...]  # immediate and displacement: (offset, size)


def _decode_x86(data: bytes, marker_index: int, boundaries: Sequence[int]) -> list[_Instruction]:
    pieces, _prefix = decode_anchored(X86_64, data, marker_index, boundaries=boundaries)
    return [
        _Instruction(
            start=piece.start,
            size=piece.size,
            mnemonic=piece.mnemonic,
            fields=x86_operand_fields(data[piece.start : piece.start + piece.size], piece.start)
            if piece.mnemonic
            else (),
        )
        for piece in pieces
    ]


def _covering(instructions: list[_Instruction], index: int) -> _Instruction | None:
    position = bisect.bisect_right([i.start for i in instructions], index) - 1
    if position >= 0 and index < instructions[position].start + instructions[position].size:
        return instructions[position]
    return None


_X86_FLOW = frozenset({"call", "callq", "jmp", "jmpq"})
# Only at run time, put there by patching: `ret; int3` for return thunks
# (arch/x86/kernel/alternative.c patch_return), `lfence; call *%reg` for retpolines,
# `stac`/`clac` over NOPs (SMAP alternatives).
_X86_RUNTIME_ONLY = frozenset({"ret", "retq", "int3", "lfence", "stac", "clac"})


def _x86_patch_reason(instruction: _Instruction | None, runtime: bool) -> PatchReason | None:
    if instruction is None or not instruction.mnemonic:
        return None
    mnemonic = instruction.mnemonic
    if mnemonic.startswith("nop") or (mnemonic.startswith("xchg") and instruction.size == 2):
        return PatchReason.NOP
    if mnemonic in _X86_FLOW or (runtime and mnemonic in _X86_RUNTIME_ONLY):
        return PatchReason.CALL_OR_JUMP
    return None


def _explain_x86(
    sides: _Sides, marker_index: int, differing: list[int], boundaries: list[int]
) -> Iterator[_Rule]:
    code, image, is_module = sides.code, sides.image, sides.is_module
    code_side = _decode_x86(code, marker_index, boundaries)
    image_side = _decode_x86(image, marker_index, boundaries)
    for index in differing:
        in_image = _covering(image_side, index)
        in_code = _covering(code_side, index)
        reason = _x86_patch_reason(in_image, runtime=False)
        if reason is not None and in_image is not None:
            yield in_image.start, in_image.size, reason
            continue
        reason = _x86_patch_reason(in_code, runtime=True)
        if reason is not None and in_code is not None:
            yield in_code.start, in_code.size, reason
            continue
        if in_image is not None and in_code is not None:
            reason = _relocated_field(
                code=code,
                image=image,
                in_code=in_code,
                in_image=in_image,
                index=index,
                is_module=is_module,
            )
            if reason is not None:
                yield in_image.start, in_image.size, reason
                continue
        yield index, 1, None


# x86-64 KASLR moves the kernel in CONFIG_PHYSICAL_ALIGN steps, at least 2 MiB
# (arch/x86/Kconfig PHYSICAL_ALIGN; arch/x86/boot/compressed/kaslr.c).
_KASLR_ALIGN = 2 * 1024 * 1024


def _relocated_field(
    *,
    code: bytes,
    image: bytes,
    in_code: _Instruction,
    in_image: _Instruction,
    index: int,
    is_module: bool,
) -> PatchReason | None:
    """A difference inside one immediate/displacement of two otherwise equal instructions."""
    if not in_image.mnemonic or (in_code.start, in_code.size, in_code.mnemonic) != (
        in_image.start,
        in_image.size,
        in_image.mnemonic,
    ):
        return None
    start, end = in_image.start, in_image.start + in_image.size
    for offset, size in in_image.fields:
        low, high = start + offset, start + offset + size
        if not low <= index < high:
            continue
        if code[start:low] != image[start:low] or code[high:end] != image[high:end]:
            return None
        linked = int.from_bytes(image[low:high], "little")
        if is_module:
            return PatchReason.MODULE_RELOCATION if linked == 0 else None
        delta = (int.from_bytes(code[low:high], "little") - linked) % (1 << (8 * size))
        if size >= 4 and delta % _KASLR_ALIGN == 0:
            return PatchReason.KASLR_RELOCATION
        return None
    return None


# arm64 encodings (Arm ARM C4.1).
_ARM64_HINT_MASK, _ARM64_HINT = 0xFFFFF01F, 0xD503201F  # NOP and the other HINTs (PAC, BTI)
_ARM64_BRANCH_MASK, _ARM64_BRANCH = 0x7C000000, 0x14000000  # B and BL (bit 31 says which)
_ARM64_RELOCATED = (
    # (class mask, class value, other bits that must agree), with the relocation that
    # rewrites the instruction's immediate in a module
    (0x9F000000, 0x90000000, 0x0000001F),  # ADRP, same Rd: R_AARCH64_ADR_PREL_PG_HI21
    (0xFF800000, 0x91000000, 0x004003FF),  # ADD imm 64-bit, same shift/Rd/Rn: ADD_ABS_LO12_NC
    (0x3B000000, 0x39000000, 0xC4C003FF),  # LDR/STR unsigned imm, same size/V/opc/Rt/Rn: LDST*_LO12
    (0x1F800000, 0x12800000, 0xE060001F),  # MOVN/MOVZ/MOVK, same sf/opc/hw/Rd: MOVW_UABS_G*
)


def _explain_arm64(
    sides: _Sides, marker_index: int, differing: list[int], boundaries: list[int]
) -> Iterator[_Rule]:
    del boundaries  # an instruction starts every 4 bytes from the marker
    code, image, is_module = sides.code, sides.image, sides.is_module
    first = marker_index % ARM64_INSTRUCTION
    for index in differing:
        start = index - (index - first) % ARM64_INSTRUCTION
        if start < 0 or start + ARM64_INSTRUCTION > len(code):
            yield index, 1, None
            continue
        runtime = int.from_bytes(code[start : start + ARM64_INSTRUCTION], "little")
        linked = int.from_bytes(image[start : start + ARM64_INSTRUCTION], "little")
        reason: PatchReason | None = None
        if _ARM64_HINT in (runtime & _ARM64_HINT_MASK, linked & _ARM64_HINT_MASK):
            reason = PatchReason.NOP
        elif (
            runtime & _ARM64_BRANCH_MASK == _ARM64_BRANCH == linked & _ARM64_BRANCH_MASK
            and runtime >> 31 == linked >> 31
        ):
            reason = PatchReason.CALL_OR_JUMP
        elif is_module:
            for class_mask, class_value, same in _ARM64_RELOCATED:
                if (
                    runtime & class_mask == class_value == linked & class_mask
                    and runtime & same == linked & same
                ):
                    reason = PatchReason.MODULE_RELOCATION
                    break
        if reason is None:
            yield index, 1, None
        else:
            yield start, ARM64_INSTRUCTION, reason
