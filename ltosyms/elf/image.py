"""Open and validate a vmlinux or a kernel module; read its build id, sections and bytes.

:func:`open_image` is the one door to a kernel ELF file. It reads the headers itself (no
pyelftools at run time) and translates every OS error and every damaged header into
:class:`ltosyms.errors.InputError`, so callers never see foreign exceptions.

Modules (``.ko``) are ET_REL objects whose allocated sections all start at address 0. Like the
module loader (kernel/module/main.c ``layout_sections``), we give each allocated section its own
address, so that symbols and DWARF of different sections never collide
(docs/kernel-facts.md#kaslr-and-modules). Those addresses are what "link address" means for a
module.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import mmap
import os
import stat
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol

from ltosyms.errors import InputError
from ltosyms.limits import MAX_COMPRESSION_RATIO, MAX_IMAGE_BYTES, MIN_INFLATE_BYTES

# sizeof(Elf64_Ehdr) (ELF gABI "ELF Header").
_ELF64_HEADER_SIZE = 64

# e_machine values we decode (elf.h EM_X86_64, EM_AARCH64), and names for the error message.
_MACHINES = {62: "x86_64", 183: "aarch64"}
_MACHINE_NAMES = {
    3: "EM_386",
    8: "EM_MIPS",
    20: "EM_PPC",
    21: "EM_PPC64",
    22: "EM_S390",
    40: "EM_ARM",
    42: "EM_SH",
    43: "EM_SPARCV9",
    50: "EM_IA_64",
    62: "EM_X86_64",
    183: "EM_AARCH64",
    243: "EM_RISCV",
    258: "EM_LOONGARCH",
}
# e_type (gABI "ELF Header").
_ET_REL, _ET_EXEC, _ET_DYN = 1, 2, 3
_TYPE_NAMES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
# sh_type and sh_flags values (gABI "Sections").
SHT_NOBITS = 8
SHT_RELA, SHT_REL = 4, 9
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
_SHN_LORESERVE, _SHN_XINDEX = 0xFF00, 0xFFFF
_ELF64_SECTION_HEADER_SIZE = 64


class _ElfHeader(NamedTuple):
    elf_class: int  # 32 or 64
    little_endian: bool
    type: int
    machine: int
    section_headers_offset: int
    section_header_size: int
    section_count: int
    names_index: int  # e_shstrndx

    @property
    def section_headers_end(self) -> int:
        return self.section_headers_offset + self.section_count * self.section_header_size


class _SectionHeader(NamedTuple):
    name: str
    type: int
    flags: int
    address: int
    offset: int
    size: int
    link: int
    info: int
    alignment: int


def _read_header(data: mmap.mmap | bytes | bytearray) -> _ElfHeader:
    """The ELF header fields ltosyms needs (gABI "ELF Header"); the class and byte order from
    ``e_ident``. Our own reader: importing pyelftools and building its parsers costs a short
    decode more than everything else it does with six images."""
    elf_class = {1: 32, 2: 64}.get(data[4])
    if elf_class is None:
        raise ValueError(f"EI_CLASS {data[4]} is neither 32- nor 64-bit")
    if data[5] not in (1, 2):
        raise ValueError(f"EI_DATA {data[5]} is neither little- nor big-endian")
    endian = "<" if data[5] == 1 else ">"
    elf_type, machine = struct.unpack_from(endian + "HH", data, 16)
    if elf_class == 32:
        (shoff,) = struct.unpack_from(endian + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x2E)
    else:
        (shoff,) = struct.unpack_from(endian + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x3A)
    if elf_class == 64 and shoff and shentsize != _ELF64_SECTION_HEADER_SIZE:
        raise ValueError(f"e_shentsize {shentsize}, not {_ELF64_SECTION_HEADER_SIZE}")
    if shoff and (shnum == 0 or shstrndx == _SHN_XINDEX) and elf_class == 64:
        # More sections than e_shnum/e_shstrndx hold: section 0 keeps the real values.
        _name, _type, _flags, _addr, _offset, size, link, _info, _align, _entsize = (
            struct.unpack_from(endian + "IIQQQQIIQQ", data, shoff)
        )
        shnum = shnum or size
        if shstrndx == _SHN_XINDEX:
            shstrndx = link
    return _ElfHeader(
        elf_class, endian == "<", elf_type, machine, shoff, shentsize, shnum, shstrndx
    )


def _read_section_headers(data: mmap.mmap | bytes, header: _ElfHeader) -> list[_SectionHeader]:
    endian = "<" if header.little_endian else ">"
    rows = [
        struct.unpack_from(endian + "IIQQQQIIQQ", data, header.section_headers_offset + i * 64)
        for i in range(header.section_count)
    ]
    names_at = names_size = 0
    if rows:
        if not header.names_index < len(rows) or header.names_index >= _SHN_LORESERVE:
            raise ValueError(f"e_shstrndx {header.names_index} names no section")
        names_row = rows[header.names_index]
        names_at, names_size = names_row[4], names_row[5]
        if names_row[1] == SHT_NOBITS or names_at + names_size > len(data):
            raise ValueError("the section name table lies outside the file")
    sections = []
    for number, (
        name_offset,
        kind,
        flags,
        address,
        offset,
        size,
        link,
        info,
        align,
        _es,
    ) in enumerate(rows):
        if name_offset >= names_size:
            raise ValueError(f"section {number}: name offset {name_offset} is past its table")
        start = names_at + name_offset
        end = data.find(b"\0", start, names_at + names_size)
        if end < 0:
            raise ValueError(f"section {number}: its name is not terminated")
        name = bytes(data[start:end]).decode("utf-8", "replace")
        sections.append(_SectionHeader(name, kind, flags, address, offset, size, link, info, align))
    return sections


# Where a module's first allocated section is placed. Any base works, since oops frames of
# modules are `name+off`; a page-aligned non-zero base keeps 0 meaning "no address".
MODULE_BASE = 0x10000


class ImageKind(enum.Enum):
    VMLINUX = "vmlinux"
    MODULE = "module"


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    """One ELF section. ``link_address`` is the address code and symbols use (see module note)."""

    index: int
    name: str
    link_address: int
    size: int
    file_offset: int
    alignment: int
    is_alloc: bool
    is_exec: bool
    is_write: bool
    has_bits: bool  # False for SHT_NOBITS (.bss): no bytes in the file
    elf_type: int = 0  # sh_type
    link: int = 0  # sh_link: e.g. the string table of a symbol table
    info: int = 0  # sh_info: e.g. the section a relocation section applies to
    flags: int = 0  # sh_flags

    @property
    def end_address(self) -> int:
        return self.link_address + self.size

    def contains(self, link_address: int) -> bool:
        return self.link_address <= link_address < self.link_address + self.size


class KernelImage:
    """A validated vmlinux or kernel module, opened read-only.

    The file is memory-mapped (a Debian vmlinux is 590 MB); compressed modules are inflated
    into memory, within the bounds of :mod:`ltosyms.limits`. Headers are read by this module.
    """

    def __init__(self, path: Path, data: mmap.mmap | bytes) -> None:
        self.path = path
        self._data = data
        # Name a cut file as such instead of letting the parser fail somewhere inside it.
        if len(data) < _ELF64_HEADER_SIZE:
            raise InputError(
                f"{path}: truncated: {len(data)} bytes, less than the {_ELF64_HEADER_SIZE}-byte "
                "ELF header"
            )
        try:
            header = _read_header(data)
        except (struct.error, ValueError, IndexError, OverflowError) as error:
            raise InputError(f"{path}: not a usable ELF file ({error})") from None
        headers_end = header.section_headers_end
        if headers_end > len(data):
            raise InputError(
                f"{path}: truncated or damaged: section headers end at byte {headers_end}, "
                f"file has {len(data)}"
            )
        self.machine = _MACHINES.get(header.machine, "")
        self.elf_class = header.elf_class
        self.little_endian = header.little_endian
        if not self.machine:
            name = _MACHINE_NAMES.get(header.machine, str(header.machine))
            raise InputError(
                f"{path}: ELF machine {name} is not supported (x86-64 and aarch64 kernels are)"
            )
        if self.elf_class != 64:
            raise InputError(f"{path}: 32-bit ELF; only 64-bit kernels are supported")
        if header.type == _ET_REL:
            self.kind = ImageKind.MODULE
        elif header.type in (_ET_EXEC, _ET_DYN):
            self.kind = ImageKind.VMLINUX
        else:
            etype = _TYPE_NAMES.get(header.type, str(header.type))
            raise InputError(f"{path}: ELF type {etype} is neither a kernel nor a module")
        try:
            raw_sections = _read_section_headers(data, header)
        except (struct.error, ValueError, IndexError, OverflowError) as error:
            raise InputError(f"{path}: not a usable ELF file ({error})") from None
        self.sections = self._layout(raw_sections)
        self._by_name = {s.name: s for s in self.sections}
        self._check_within_file()
        self._alloc = sorted(
            (s for s in self.sections if s.is_alloc and s.has_bits and s.size),
            key=lambda s: s.link_address,
        )
        self.build_id = self._read_build_id()

    # -- construction helpers ---------------------------------------------------------------

    def _layout(self, raw_sections: list[_SectionHeader]) -> list[Section]:
        module_addresses = (
            self._module_layout(raw_sections) if self.kind is ImageKind.MODULE else {}
        )
        return [
            Section(
                index=index,
                name=raw.name,
                link_address=module_addresses.get(index, raw.address),
                size=raw.size,
                file_offset=raw.offset,
                alignment=max(raw.alignment, 1),
                is_alloc=bool(raw.flags & SHF_ALLOC),
                is_exec=bool(raw.flags & SHF_EXECINSTR),
                is_write=bool(raw.flags & SHF_WRITE),
                has_bits=raw.type != SHT_NOBITS,
                elf_type=raw.type,
                link=raw.link,
                info=raw.info,
                flags=raw.flags,
            )
            for index, raw in enumerate(raw_sections)
        ]

    @staticmethod
    def _module_layout(raw_sections: list[_SectionHeader]) -> dict[int, int]:
        """Section addresses as the module loader lays them out (kernel/module/main.c 6.1
        ``layout_sections``): executable, then read-only, then writable sections, each class in
        section-header order and aligned; ``.init*`` sections after the core ones (``.exit*``
        stay in the core with CONFIG_MODULE_UNLOAD, which every distro kernel sets). This order
        makes module kallsyms sizes come out as the kernel prints them."""
        alloc, execinstr, write = SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE
        mask = alloc | write | execinstr
        # (flags & mask) per class: code, read-only data, writable data
        classes = (alloc | execinstr, alloc, alloc | write)
        addresses: dict[int, int] = {}
        next_address = MODULE_BASE
        for init in (False, True):
            for wanted in classes:
                for index, raw in enumerate(raw_sections):
                    is_init = raw.name.startswith(".init")
                    # rewrite_section_headers() clears SHF_ALLOC of these: never loaded.
                    if raw.name in (".modinfo", "__versions"):
                        continue
                    belongs = raw.flags & mask == wanted or (
                        wanted == alloc | execinstr and raw.flags & mask == mask
                    )
                    if index in addresses or is_init != init or not belongs:
                        continue
                    alignment = max(raw.alignment, 1)
                    next_address = -(-next_address // alignment) * alignment
                    addresses[index] = next_address
                    next_address += raw.size
                # strict_align(): with CONFIG_STRICT_MODULE_RWX each class starts on a page.
                next_address = -(-next_address // 4096) * 4096
        return addresses

    def _check_within_file(self) -> None:
        file_size = len(self._data)
        for section in self.sections:
            if (
                section.has_bits
                and section.size
                and section.index
                and section.file_offset + section.size > file_size
            ):
                raise InputError(
                    f"{self.path}: truncated: section {section.name} ends at byte "
                    f"{section.file_offset + section.size}, file has {file_size}"
                )

    def _read_build_id(self) -> str | None:
        # A note is namesz, descsz, type, then name and desc padded to 4 (ELF gABI "Note Section").
        for section in self.sections:
            if not section.name.startswith(".note") and section.name != ".notes":
                continue
            blob = self.section_bytes(section)
            offset = 0
            while offset + 12 <= len(blob):
                namesz, descsz, note_type = struct.unpack_from("<III", blob, offset)
                offset += 12
                name = blob[offset : offset + namesz]
                offset += (namesz + 3) & ~3
                desc = blob[offset : offset + descsz]
                offset += (descsz + 3) & ~3
                if note_type == 3 and name.rstrip(b"\0") == b"GNU":  # NT_GNU_BUILD_ID
                    return desc.hex()
        return None

    # -- queries ------------------------------------------------------------------------------

    @property
    def data(self) -> mmap.mmap | bytes:
        return self._data

    @property
    def is_module(self) -> bool:
        return self.kind is ImageKind.MODULE

    def has_section(self, name: str) -> bool:
        return name in self._by_name

    def get_section(self, name: str) -> Section | None:
        return self._by_name.get(name)

    def section_bytes(self, section: Section) -> bytes:
        if not section.has_bits:
            return b""
        return bytes(self._data[section.file_offset : section.file_offset + section.size])

    def has_dwarf(self) -> bool:
        return self.has_section(".debug_info")

    def section_at(self, link_address: int) -> Section | None:
        """The allocated section (with bytes in the file) that holds ``link_address``."""
        low, high = 0, len(self._alloc)
        while low < high:
            mid = (low + high) // 2
            if self._alloc[mid].link_address <= link_address:
                low = mid + 1
            else:
                high = mid
        if low and self._alloc[low - 1].contains(link_address):
            return self._alloc[low - 1]
        return None

    def read(self, link_address: int, length: int) -> bytes:
        """Bytes of the image at a link-time address, cut at the end of its section."""
        section = self.section_at(link_address)
        if section is None:
            raise InputError(f"{self.path}: no code or data at link address {link_address:#x}")
        start = section.file_offset + (link_address - section.link_address)
        end = min(start + length, section.file_offset + section.size)
        return bytes(self._data[start:end])

    def close(self) -> None:
        if isinstance(self._data, mmap.mmap):
            self._data.close()

    def __enter__(self) -> KernelImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KernelImage({str(self.path)!r}, {self.kind.value}, build_id={self.build_id})"


class _Inflating(Protocol):
    """What :func:`_inflate` reads from: a decompressing reader."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


def _zstandard() -> Any:
    """The optional ``zstandard`` module (.ko.zst), None when it is not installed."""
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        return None
    return zstandard


def _open_zstd(file: IO[bytes]) -> _Inflating:
    zstandard = _zstandard()
    if zstandard is None:
        raise InputError(
            f"{file.name}: .zst modules need the 'zstandard' package (pip install zstandard)"
        )
    reader: _Inflating = zstandard.ZstdDecompressor().stream_reader(file, read_across_frames=True)
    return reader


def _open_xz(file: IO[bytes]) -> _Inflating:
    import lzma  # here: most images are not compressed (3 ms of every start-up for the three)

    return lzma.LZMAFile(file)


def _open_gzip(file: IO[bytes]) -> _Inflating:
    import gzip

    return gzip.GzipFile(fileobj=file, mode="rb")


def _open_bz2(file: IO[bytes]) -> _Inflating:
    import bz2

    return bz2.BZ2File(file)


# Readers that inflate as they are read, several concatenated members or streams included (as
# gzip -d, xz -d and the kernel's module loader accept them).
_DECOMPRESSORS: dict[str, Callable[[IO[bytes]], _Inflating]] = {
    ".xz": _open_xz,
    ".gz": _open_gzip,
    ".bz2": _open_bz2,
    ".zst": _open_zstd,
}
_INFLATE_BLOCK = 1 << 20


def _inflate(path: Path, file: IO[bytes]) -> bytes:
    """The ELF image inside a compressed file, inflated a block at a time.

    Inflating stops as soon as the output cannot be a kernel image (no ELF magic), at the end
    of the ELF (its section headers and the sections they place; trailing bytes are not
    read), and with a one-line error when the image would pass MAX_IMAGE_BYTES or the output
    outgrows MAX_COMPRESSION_RATIO times the input read so far (see :mod:`ltosyms.limits`).
    """
    import lzma  # for its error type (see _open_xz)

    output = bytearray()
    elf_end: int | None = None  # known once the section headers are in
    header: _ElfHeader | None = None
    try:
        with contextlib.closing(_DECOMPRESSORS[path.suffix](file)) as inflated:
            while elf_end is None or len(output) < elf_end:
                wanted = _INFLATE_BLOCK if elf_end is None else elf_end - len(output)
                block = inflated.read(min(wanted, _INFLATE_BLOCK))
                if not block:
                    break
                output += block
                if header is None and len(output) >= _ELF64_HEADER_SIZE:
                    if output[:4] != b"\x7fELF":
                        raise InputError(f"{path}: not an ELF file")
                    try:
                        header = _read_header(output)
                    except (struct.error, ValueError) as error:
                        raise InputError(f"{path}: not a usable ELF file ({error})") from None
                    _check_inflated_size(path, header.section_headers_end)
                if header is not None and elf_end is None:
                    elf_end = _elf_end(output, header)
                    if elf_end is not None:
                        _check_inflated_size(path, elf_end)
                consumed = file.tell()
                if (
                    len(output) > MIN_INFLATE_BYTES
                    and len(output) > MAX_COMPRESSION_RATIO * consumed
                ):
                    raise InputError(
                        f"{path}: inflates to more than {MAX_COMPRESSION_RATIO} times its "
                        f"{consumed:,} compressed bytes; a kernel image compresses far less"
                    )
    except (lzma.LZMAError, OSError, EOFError, zlib.error, ValueError, struct.error) as error:
        raise InputError(f"{path}: cannot decompress: {error}") from None
    except _zstd_errors() as error:
        raise InputError(f"{path}: cannot decompress: {error}") from None
    return bytes(output if elf_end is None else output[:elf_end])


def _check_inflated_size(path: Path, size: int) -> None:
    if size > MAX_IMAGE_BYTES:
        raise InputError(
            f"{path}: the ELF it holds claims {size:,} bytes, more than the "
            f"{MAX_IMAGE_BYTES:,} of the largest image ltosyms reads"
        )


def _elf_end(data: bytearray, header: _ElfHeader) -> int | None:
    """Where the ELF in ``data`` ends (its section headers and every section with bytes), or
    None while its section headers are not all there yet."""
    if header.elf_class != 64 or header.section_headers_end > len(data):
        return None
    endian = "<" if header.little_endian else ">"
    end = header.section_headers_end
    for number in range(header.section_count):
        row = struct.unpack_from(
            endian + "IIQQQQ", data, header.section_headers_offset + number * 64
        )
        if row[1] != SHT_NOBITS:
            end = max(end, row[4] + row[5])
    return end


def _zstd_errors() -> tuple[type[Exception], ...]:
    zstandard = _zstandard()
    return () if zstandard is None else (zstandard.ZstdError,)


def open_image(
    path: str | os.PathLike[str],
    expect: ImageKind | None = None,
    *,
    require_symtab: bool = True,
    follow_symlinks: bool = True,
) -> KernelImage:
    """Open ``path`` as a kernel image; ``expect`` rejects a module given as vmlinux and so on.

    ``require_symtab=False`` accepts a stripped image (to read its build id, as a debuginfod
    client does for a fetched executable); ``follow_symlinks=False`` refuses a symbolic link
    (a cache entry planted as one)."""
    path = Path(path)
    # O_NONBLOCK: opening a FIFO must not wait for a writer; only regular files are images,
    # and the check is made on what was opened, not on a name that may change meanwhile.
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        descriptor = os.open(path, flags)
        with open(descriptor, "rb") as file:
            mode = os.fstat(descriptor).st_mode
            if stat.S_ISDIR(mode):
                raise InputError(f"{path}: is a directory, not an ELF file")
            if not stat.S_ISREG(mode):
                raise InputError(f"{path}: not a regular file")
            if path.suffix in _DECOMPRESSORS:
                image_bytes: mmap.mmap | bytes = _inflate(path, file)
            else:
                magic = file.read(4)
                if magic != b"\x7fELF":
                    raise InputError(f"{path}: not an ELF file")
                try:
                    # The map outlives the file object: no descriptor stays open.
                    mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
                except (OSError, ValueError) as error:
                    raise InputError(f"{path}: cannot map file: {error}") from None
                image_bytes = mapped
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not an ELF file") from None
    except OSError as error:
        if error.errno == errno.ELOOP and not follow_symlinks:
            raise InputError(f"{path}: is a symbolic link, not followed here") from None
        raise InputError(f"{path}: {error.strerror or error}") from None
    if image_bytes[:4] != b"\x7fELF":
        raise InputError(f"{path}: not an ELF file")
    image = KernelImage(path, image_bytes)
    if expect is ImageKind.VMLINUX and image.is_module:
        raise InputError(f"{path}: is a kernel module (ET_REL), not a vmlinux")
    if expect is ImageKind.MODULE and not image.is_module:
        raise InputError(f"{path}: is not a kernel module (expected an ET_REL .ko)")
    if require_symtab and not image.has_section(".symtab"):
        raise InputError(f"{path}: has no .symtab (stripped); a debug vmlinux is needed")
    return image
