"""A ``Code:`` listing in a developer's terms: ``func+off`` labels, targets named, bytes told apart.

The listing (:mod:`ltosyms.disasm.listing`) decodes what the log printed. This view adds, per
listed instruction, what the image knows:

* where it is, as the kernel would print it: ``lkdtm_WARNING+0xa``, or ``.text+0x32a`` where no
  symbol covers a module's byte -- never the private addresses ltosyms gives module sections
  (:mod:`ltosyms.elf.image`);
* the function a call or jump enters, named (a module's call by the relocation the loader
  applied, :mod:`ltosyms.elf.relocations`), and the object a RIP-relative operand or a module
  relocation refers to, as a comment;
* whether the bytes are padding between functions, the tail of an instruction that starts
  before the line, the head of one that ends after it (decoded whole from the image), or bytes
  that decode to nothing.

When the kernel could not read the bytes (``Code: Unable to access opcode bytes at ...``) the
view lists the image's own instructions around the IP instead, and says so; when the IP is in
a data object (lkdtm EXEC_DATA) it lists nothing: those bytes are data the CPU was made to run.

Views are computed once and kept in the image's index (:mod:`ltosyms.disasm.view` has the
records and their stored form): a warm decode needs no disassembler for them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ltosyms.disasm.callsite import finder_for
from ltosyms.disasm.compare import ImageWindow
from ltosyms.disasm.decoder import (
    AARCH64,
    ADDRESS_MASK,
    ARM64_INSTRUCTION,
    X86_64,
    X86_MAX_INSTRUCTION,
    decode_one,
    normalize_arch,
    tidy_op_str,
)
from ltosyms.disasm.listing import disassemble_code
from ltosyms.disasm.records import CodeInstruction, CodeListing, CodeMatch
from ltosyms.disasm.targets import CodePoint, code_point, plain_mnemonic
from ltosyms.disasm.view import (
    X86_CODE_EPILOGUE,
    X86_CODE_PROLOGUE,
    CodeRow,
    CodeView,
    RowKind,
    ViewSource,
)
from ltosyms.elf.image import KernelImage
from ltosyms.elf.relocations import ARM64_BRANCHES, ModuleRelocations, Relocation
from ltosyms.elf.symtab import Symbol, SymbolTable
from ltosyms.errors import InputError

# A function no longer than this is listed whole when the kernel printed no bytes.
_WHOLE_FUNCTION = 64

# -- building -------------------------------------------------------------------------------


def code_view(
    listing: CodeListing,
    image: KernelImage,
    symbols: SymbolTable,
    relocations: ModuleRelocations | None,
    window: ImageWindow | None,
    match: CodeMatch | None,
    ip_symbol: Symbol | None,
) -> CodeView:
    """The rows of ``listing`` (a ``Code:`` line decoded at the IP's link address in
    ``image``); ``window`` and ``match`` are the image's bytes there and whether they are the
    code that ran: only then does the image say where padding and cut instructions are."""
    if ip_symbol is not None and _is_data(image, ip_symbol):
        note = (
            f"not listed: the IP is in data object {ip_symbol.name} ({ip_symbol.section}); "
            "the CPU was made to execute data"
        )
        return CodeView(source=ViewSource.LOG, rows=(), note=note)
    matching = window if (match is not None and match.is_match) else None
    return CodeView(
        source=ViewSource.LOG, rows=_rows(listing, image, symbols, relocations, matching), note=None
    )


def image_code_view(
    image: KernelImage,
    symbols: SymbolTable,
    relocations: ModuleRelocations | None,
    marker_link_address: int,
    image_name: str,
) -> CodeView | None:
    """The instructions around ``marker_link_address`` from the image, for an oops whose
    ``Code:`` line could not be printed: the whole function when it is short, else the bytes
    the kernel would have printed (42 before, 21 after, x86), cut to the function and to
    instruction boundaries. None when no function holds the address."""
    function = symbols.lookup(marker_link_address)
    if function is None or _is_data(image, function):
        return None
    function = symbols.widest_alias(function)
    arch = normalize_arch(image.machine)
    size = function.elf_size or function.kallsyms_size or 0
    end = function.link_address + size
    if not function.link_address <= marker_link_address < end:
        return None
    finder = finder_for(image, symbols)
    if size <= _WHOLE_FUNCTION:
        start, stop = function.link_address, end
    else:
        start = max(function.link_address, marker_link_address - X86_CODE_PROLOGUE)
        stop = min(end, marker_link_address + X86_CODE_EPILOGUE + 1)
    if arch == AARCH64:
        start -= (start - function.link_address) % ARM64_INSTRUCTION
    else:
        start = finder.boundary_at_or_after(function.link_address, start) or marker_link_address
        start = min(start, marker_link_address)
    try:
        data = image.read(start, stop - start + X86_MAX_INSTRUCTION)
    except InputError:
        return None
    listing = disassemble_code(
        data, marker_link_address - start, arch, marker_link_address, boundaries=(0,)
    )
    # Instructions that start before the function's end (the read went on for the last one).
    kept = tuple(
        i for i in listing.instructions if i.link_address is not None and i.link_address < stop
    )
    cut = CodeListing(
        arch=arch,
        instructions=kept,
        marker_index=listing.marker_index,
        marker_link_address=marker_link_address,
        undecoded_prefix=0,
    )
    note = f"the kernel printed no Code: bytes; {function.name} as {image_name} has it"
    return CodeView(
        source=ViewSource.IMAGE,
        rows=_rows(cut, image, symbols, relocations, None),
        note=note,
        listing=cut,
    )


def _is_data(image: KernelImage, symbol: Symbol) -> bool:
    section = image.get_section(symbol.section)
    return section is not None and section.is_alloc and not section.is_exec


def _rows(
    listing: CodeListing,
    image: KernelImage,
    symbols: SymbolTable,
    relocations: ModuleRelocations | None,
    window: ImageWindow | None,
) -> tuple[CodeRow, ...]:
    arch = listing.arch
    marker_index = listing.marker_index or 0
    padding = window.padding if window is not None else ()
    rows = []
    last = len(listing.instructions) - 1
    replaced_until = 0
    for position, instruction in enumerate(listing.instructions):
        index = marker_index + instruction.offset  # of its first byte in the Code: line
        link = instruction.link_address
        label = None if link is None else code_point(symbols, link, image)
        end_index = index + len(instruction.raw)
        if any(start <= index and end_index <= end for start, end in padding):
            rows.append(_bytes_row(RowKind.PADDING, label))
            continue
        if window is not None and link is not None:
            whole = _whole_instruction(
                image,
                symbols,
                relocations,
                arch,
                instruction,
                link,
                first=position == 0,
                last=position == last,
            )
            if whole is not None:
                rows.append(whole)
                continue
        if not instruction.is_valid:
            rows.append(_bytes_row(RowKind.UNDECODED, label))
            continue
        patched = None
        if window is not None and link is not None and link >= replaced_until:
            found = _patched(image, symbols, relocations, arch, instruction, index, window)
            if found is not None:
                patched, image_length = found
                # The log's next instructions (`int3` after a patched-in `ret`) lie inside
                # the image's instruction: not compared with the image's bytes again.
                replaced_until = link + image_length
        comment: str | None
        if patched is not None:
            # Boot-time patching (ftrace NOPs, return thunks, alternatives): the image's own
            # instruction there is named, not the relocation it carries.
            mnemonic, operands = plain_mnemonic(instruction.mnemonic), instruction.op_str
            target, comment = None, patched
        else:
            mnemonic, operands, target, comment = _named_text(
                arch, instruction, image, symbols, relocations
            )
            if comment is None and window is not None and link is not None and not image.is_module:
                comment = _image_immediate(image, symbols, arch, link)
        rows.append(
            CodeRow(
                kind=RowKind.INSTRUCTION,
                label=label,
                mnemonic=mnemonic,
                operands=operands,
                target=target,
                comment=comment,
            )
        )
    return tuple(rows)


# A 64-bit kernel address as an immediate (sign-extended imm32 of `movq $..., %reg`).
_KERNEL_IMMEDIATE = re.compile(r"\$(0xffff[0-9a-f]{12})\b")


def _image_immediate(image: KernelImage, symbols: SymbolTable, arch: str, link: int) -> str | None:
    """The data object a vmlinux instruction's absolute immediate points at, read from the
    image's instruction: the log's bytes carry it moved by the KASLR offset."""
    if arch != X86_64:
        return None
    whole = _image_instruction(image, link)
    if whole is None:
        return None
    match = _KERNEL_IMMEDIATE.search(whole.op_str)
    if match is None:
        return None
    address = int(match[1], 16)
    section = image.section_at(address)
    if section is None or section.is_exec:
        return None
    return _object(None, address, symbols, image)


def _patched(
    image: KernelImage,
    symbols: SymbolTable,
    relocations: ModuleRelocations | None,
    arch: str,
    instruction: CodeInstruction,
    index: int,
    window: ImageWindow,
) -> tuple[str, int] | None:
    """``image: call __fentry__`` and that instruction's length, when the image has another
    instruction where the log's starts (docs/kernel-facts.md#boot-patching); None when they
    are the same instruction, whatever relocated fields differ."""
    start = index - window.code_offset
    image_bytes = window.data[start : start + len(instruction.raw)]
    if start < 0 or image_bytes == instruction.raw or instruction.link_address is None:
        return None
    if arch == AARCH64:
        decoded = decode_one(AARCH64, image_bytes, instruction.link_address)
        if decoded is None or decoded[2] == instruction.mnemonic:
            return None
        whole = CodeInstruction(
            offset=0,
            link_address=instruction.link_address,
            raw=image_bytes,
            mnemonic=decoded[2],
            op_str=decoded[3],
            is_fault=False,
        )
    else:
        found = _image_instruction(image, instruction.link_address)
        if found is None or found.mnemonic == instruction.mnemonic:
            return None
        whole = found
    mnemonic, operands, _target, _comment = _named_text(arch, whole, image, symbols, relocations)
    return f"image: {mnemonic} {operands}".rstrip(), len(whole.raw)


def _bytes_row(kind: RowKind, label: CodePoint | None) -> CodeRow:
    """A row of bytes that are no instruction to print: padding, or bytes that decode to none."""
    return CodeRow(kind=kind, label=label, mnemonic="", operands="", target=None, comment=None)


def _whole_instruction(
    image: KernelImage,
    symbols: SymbolTable,
    relocations: ModuleRelocations | None,
    arch: str,
    instruction: CodeInstruction,
    link: int,
    *,
    first: bool,
    last: bool,
) -> CodeRow | None:
    """A row for bytes cut by the line's ends, decoded whole from the (matching) image: the
    first piece when it is the tail of an instruction starting before the line, the last one
    when the image's instruction there is longer than what the line printed."""
    if arch != X86_64:
        return None
    if first and not instruction.is_valid:
        start = _instruction_start_before(image, symbols, link)
        if start is None:
            return None
        whole = _image_instruction(image, start)
        if whole is None or start + len(whole.raw) != link + len(instruction.raw):
            return None
        kind = RowKind.CUT_BEFORE
    elif last:
        whole = _image_instruction(image, link)
        if whole is None or len(whole.raw) <= len(instruction.raw):
            return None
        kind = RowKind.CUT_AFTER
    else:
        return None
    assert whole.link_address is not None
    mnemonic, operands, target, comment = _named_text(arch, whole, image, symbols, relocations)
    # Labelled by the first byte the line shows, as every row is.
    label = code_point(symbols, link, image)
    starts_at = (
        code_point(symbols, whole.link_address, image) if whole.link_address != link else None
    )
    return CodeRow(
        kind=kind,
        label=label,
        mnemonic=mnemonic,
        operands=operands,
        target=target,
        comment=comment,
        starts_at=starts_at,
    )


def _image_instruction(image: KernelImage, link: int) -> CodeInstruction | None:
    """The image's instruction at ``link`` (its bytes, not the log's)."""
    try:
        data = image.read(link, X86_MAX_INSTRUCTION)
    except InputError:
        return None
    decoded = decode_one(image.machine, data, link)
    if decoded is None:
        return None
    _address, size, mnemonic, op_str = decoded
    return CodeInstruction(
        offset=0,
        link_address=link,
        raw=data[:size],
        mnemonic=mnemonic,
        op_str=tidy_op_str(X86_64, op_str),
        is_fault=False,
    )


def _instruction_start_before(image: KernelImage, symbols: SymbolTable, link: int) -> int | None:
    """The start of the instruction that holds ``link - 1``, from its function's sweep."""
    function = symbols.lookup(link - 1)
    if function is None:
        return None
    finder = finder_for(image, symbols)
    start = None
    probe = max(function.link_address, link - X86_MAX_INSTRUCTION)
    while True:
        found = finder.boundary_at_or_after(function.link_address, probe)
        if found is None or found >= link:
            return start
        start, probe = found, found + 1


# x86 branches with a direct target: jmp, jcc, call, loop*, jrcxz; capstone prints the target
# as an absolute address.
_X86_BRANCH = re.compile(r"^(?:j\w*|call\w?|loop\w*)$")
_X86_DIRECT = re.compile(r"^0x[0-9a-f]+$")
# arm64: b, bl, b.cond, cbz/cbnz, tbz/tbnz: the target is the last operand, "#0x...".
_ARM64_BRANCH = re.compile(r"^(?:b|bl|b\.\w+|cbn?z|tbn?z)$")
_ARM64_TARGET = re.compile(r"#(0x[0-9a-f]+)$")
# Instructions whose last operand is an address: adr, adrp, and literal loads.
_ARM64_ADDRESS = re.compile(r"^(?:adrp?|ldr|ldrsw|prfm)$")
_RIP_RELATIVE = re.compile(r"(-?0x[0-9a-f]+|-?\d+)?\(%rip\)")


def _named_text(
    arch: str,
    instruction: CodeInstruction,
    image: KernelImage,
    symbols: SymbolTable,
    relocations: ModuleRelocations | None,
) -> tuple[str, str, CodePoint | None, str | None]:
    """The mnemonic, the operands with a branch target named, the target, and a comment
    naming what a relocation or a RIP-relative operand points at."""
    mnemonic, op_str = plain_mnemonic(instruction.mnemonic), instruction.op_str
    link = instruction.link_address
    field_relocations: Sequence[Relocation] = ()
    if relocations is not None and link is not None:
        field_relocations = relocations.within(link, link + len(instruction.raw))
    target_text, target = None, None
    if arch == X86_64 and _X86_BRANCH.match(mnemonic) and _X86_DIRECT.match(op_str):
        target = _branch_target(int(op_str, 16), instruction, image, symbols, field_relocations)
        target_text = op_str
    elif arch == AARCH64 and _ARM64_BRANCH.match(mnemonic):
        found = _ARM64_TARGET.search(op_str)
        if found is not None:
            target = _branch_target(
                int(found[1], 16), instruction, image, symbols, field_relocations
            )
            target_text = found[0]
    elif arch == AARCH64 and image.is_module and _ARM64_ADDRESS.match(mnemonic):
        # adr/adrp/ldr-literal print an address computed from where ltosyms placed the
        # module's section: the relocation (or the place) names it instead, as assembly
        # source writes it (`adrp x0, .rodata+0xc71`).
        found = _ARM64_TARGET.search(op_str)
        if found is not None and "[" not in op_str:
            point = _address_operand(int(found[1], 16), image, symbols, field_relocations)
            op_str = op_str[: len(op_str) - len(found[0])] + point
            comment = _operand_comment(arch, instruction, image, symbols, field_relocations)
            literal = comment.partition(" ")[2] if comment is not None else ""
            return mnemonic, op_str, None, literal or None
    comment = None
    if target is not None and target_text is not None:
        op_str = op_str[: len(op_str) - len(target_text)] + str(target)
    elif target_text is not None and image.is_module:
        # A module branch to no place of the image: the number would be one of ltosyms'
        # private section addresses, not one a user can look up.
        op_str = op_str[: len(op_str) - len(target_text)] + "?"
    else:
        comment = _operand_comment(arch, instruction, image, symbols, field_relocations)
    return mnemonic, op_str, target, comment


def _address_operand(
    computed: int, image: KernelImage, symbols: SymbolTable, field_relocations: Sequence[Relocation]
) -> str:
    for relocation in field_relocations:
        if relocation.symbol_link_address is None:
            return str(CodePoint(symbol=relocation.symbol, offset=relocation.addend))
        address = relocation.symbol_link_address + relocation.addend
        return _object(None, address, symbols, image, quote=False) or "?"
    return _object(None, computed, symbols, image, quote=False) or "?"


def _branch_target(
    computed: int,
    instruction: CodeInstruction,
    image: KernelImage,
    symbols: SymbolTable,
    field_relocations: Sequence[Relocation],
) -> CodePoint | None:
    """A branch's target: in a module, the relocation the loader applied to the displacement
    when there is one (the printed displacement is relative to where the module was loaded);
    else the address the displacement gives."""
    link = instruction.link_address
    if link is None:
        return None
    for relocation in field_relocations:
        if not relocation.pc_relative:
            continue
        if image.machine == AARCH64:
            if relocation.type not in ARM64_BRANCHES:
                continue
            return _relocation_point(relocation, relocation.addend, symbols, image)
        end = link + len(instruction.raw)
        return _relocation_point(
            relocation, relocation.addend + end - relocation.link_address, symbols, image
        )
    point = code_point(symbols, computed, image)
    if point.symbol is None and point.section is None and image.section_at(computed) is None:
        return None  # nowhere in the image: leave the number
    return point


def _relocation_point(
    relocation: Relocation, displacement: int, symbols: SymbolTable, image: KernelImage
) -> CodePoint:
    if relocation.symbol_link_address is None:
        return CodePoint(symbol=relocation.symbol, offset=displacement)
    return code_point(symbols, relocation.symbol_link_address + displacement, image)


# A C string worth quoting: printable ASCII (and tab/newline), NUL-terminated, after an
# optional printk level (include/linux/kern_levels.h: KERN_SOH "\001" and a level character).
_STRING = re.compile(rb"(?:\x01[0-7cd])?([\t\n\x20-\x7e]{3,})\x00")
_QUOTED = 40


def _object(
    relocation: Relocation | None,
    address: int | None,
    symbols: SymbolTable,
    image: KernelImage,
    quote: bool = True,
) -> str | None:
    """What data ``address`` (or a relocation's undefined symbol) is: the object holding it
    by its ELF extent (``warn_counter``), else its section and offset (``.rodata+0xa44``),
    and a string literal quoted (what a ``printk`` or ``WARN`` format says)."""
    if address is None:
        assert relocation is not None
        return str(CodePoint(symbol=relocation.symbol, offset=relocation.addend))
    symbol = symbols.lookup(address)
    if symbol is not None:
        symbol = symbols.widest_alias(symbol)
    point = None
    if symbol is not None and symbol.link_address <= address < symbol.end_address:
        point = CodePoint(symbol=symbol.name, offset=address - symbol.link_address)
    section = image.section_at(address)
    if point is None and section is not None:
        point = CodePoint(symbol=None, offset=address - section.link_address, section=section.name)
    if point is None:
        return None
    text = str(point)
    # Read-only data: a vmlinux's .rodata is marked writable (the linker script puts
    # ro_after_init data in it), so it is taken by name.
    read_only = section is not None and (not section.is_write or section.name.startswith(".rodata"))
    if quote and section is not None and not section.is_exec and read_only:
        try:
            found = _STRING.match(image.read(address, 256))
        except InputError:
            found = None
        if found is not None:
            literal = found.group(1).decode("ascii")
            shown = literal if len(literal) <= _QUOTED else literal[: _QUOTED - 3] + "..."
            text += " " + repr(shown).replace("'", '"')
    return text


def _operand_comment(
    arch: str,
    instruction: CodeInstruction,
    image: KernelImage,
    symbols: SymbolTable,
    field_relocations: Sequence[Relocation],
) -> str | None:
    """What the instruction's relocated field (module) or RIP-relative operand (vmlinux)
    refers to, objdump -dr style: ``.bss+0x10``, ``jiffies``."""
    link = instruction.link_address
    if link is None:
        return None
    end = link + len(instruction.raw)
    for relocation in field_relocations:
        # x86 PC32 fields hold S + A - P, read by the CPU from the instruction's end; every
        # other kind (absolute, arm64 page/low-12 pairs) refers to S + A.
        displacement = relocation.addend
        if relocation.pc_relative and arch == X86_64:
            displacement += end - relocation.link_address
        if relocation.symbol_link_address is None:
            return _object(relocation, None, symbols, image)
        return _object(None, relocation.symbol_link_address + displacement, symbols, image)
    if arch != X86_64 or image.is_module:
        return None
    match = _RIP_RELATIVE.search(instruction.op_str)
    if match is None:
        return None
    return _object(None, (end + int(match[1] or "0", 0)) & ADDRESS_MASK, symbols, image)
