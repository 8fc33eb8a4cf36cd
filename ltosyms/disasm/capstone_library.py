"""capstone's own library, called through ctypes for the one thing a sweep asks of it.

Importing the ``capstone`` package costs ~50 ms (it loads ``ctypes.util``, ``inspect`` and
the constant tables of twenty architectures), a fifth of decoding a short log after ``ltosyms
index``. A sweep needs one call, ``cs_disasm`` without details, and the ``Code:`` comparison the
x86 encoding fields of one instruction: this module loads the library the package ships and
makes those calls itself, in ~3 ms of imports.

Only capstone 5 on a 64-bit little-endian host is used this way: its ``cs_insn`` and
``cs_detail`` layouts there are the ones below (capstone.h, API 5.0; the package's ctypes
structures are the same). Another version or host, or a library not found, leaves
:func:`open_handle` answering None and :mod:`ltosyms.disasm.decoder` uses the package.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
from collections.abc import Callable, Iterator
from importlib.util import find_spec

# capstone.h (5.0): enum cs_arch, cs_mode, cs_opt_type and cs_opt_value.
CS_ARCH_ARM64 = 1
CS_ARCH_X86 = 3
CS_MODE_ARM = 0
CS_MODE_64 = 1 << 3
_CS_OPT_SYNTAX = 1
_CS_OPT_DETAIL = 2
_CS_OPT_SYNTAX_ATT = 2
_CS_OPT_ON = 3
_API_MAJOR = 5

# struct cs_insn (capstone 5): id (u32, padded to 8), address (u64), size (u16), bytes[24],
# mnemonic[32], op_str[160], padding to 8, detail (pointer): 248 bytes on 64-bit hosts.
_INSN = struct.Struct("<8xQH24x32s160s6x8x")
_DETAIL_POINTER = 240
# In cs_detail (capstone 5): regs_read[20] (u16), its count, regs_write[20], its count,
# groups[8], its count, writeback, then at 96 the architecture's part; cs_x86's encoding
# (modrm_offset, disp_offset, disp_size, imm_offset, imm_size: u8 each) sits 456 bytes in.
_X86_ENCODING = 96 + 456

RawInstruction = tuple[int, int, str, str]


class _Library:
    """The loaded library with the prototypes of the calls made."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self.library = library
        library.cs_version.restype = ctypes.c_int
        library.cs_version.argtypes = [ctypes.POINTER(ctypes.c_int)] * 2
        library.cs_open.restype = ctypes.c_int
        library.cs_open.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_size_t)]
        library.cs_option.restype = ctypes.c_int
        library.cs_option.argtypes = [ctypes.c_size_t, ctypes.c_int, ctypes.c_size_t]
        library.cs_disasm.restype = ctypes.c_size_t
        library.cs_disasm.argtypes = [
            ctypes.c_size_t,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint64,
            ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_void_p),
        ]
        library.cs_free.restype = None
        library.cs_free.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        library.cs_close.restype = ctypes.c_int
        library.cs_close.argtypes = [ctypes.POINTER(ctypes.c_size_t)]

    def major_version(self) -> int:
        major, minor = ctypes.c_int(), ctypes.c_int()
        self.library.cs_version(ctypes.byref(major), ctypes.byref(minor))
        return major.value


_loaded: list[_Library | None] = []


def _library() -> _Library | None:
    """The capstone 5 library of the installed package, loaded once; None when there is no
    such library (the package then decides where its own is, or fails as it would)."""
    if _loaded:
        return _loaded[0]
    library = None
    spec = find_spec("capstone")  # where the package is, without importing it
    folders = spec.submodule_search_locations if spec is not None else None
    if ctypes.sizeof(ctypes.c_void_p) != 8 or sys.byteorder != "little":
        folders = None  # the layouts below are those of 64-bit little-endian hosts
    for folder in folders or ():
        path = os.path.join(folder, "lib", "libcapstone.so")
        if not os.path.isfile(path):
            continue
        try:
            candidate = _Library(ctypes.CDLL(path))
        except (OSError, AttributeError):
            continue  # not loadable here, or not capstone's library
        if candidate.major_version() == _API_MAJOR:
            library = candidate
            break
    _loaded.append(library)
    return library


class Handle:
    """One capstone handle (an architecture and mode), details off unless asked for."""

    def __init__(self, library: _Library, handle: int) -> None:
        self._library = library.library
        self._handle = handle

    def disasm_lite(self, code: bytes, address: int, count: int = 0) -> Iterator[RawInstruction]:
        """What the package's ``Cs.disasm_lite`` yields: (address, size, mnemonic, op_str) of
        each instruction of ``code`` (its first byte at ``address``) up to the first invalid
        one, or ``count`` of them."""
        block = self._disassembled(code, address, count, _instructions)
        return (
            (at, size, mnemonic.partition(b"\0")[0].decode(), op_str.partition(b"\0")[0].decode())
            for at, size, mnemonic, op_str in _INSN.iter_unpack(block)
        )

    def x86_encoding(self, code: bytes, address: int) -> tuple[int, int, int, int] | None:
        """(disp_offset, disp_size, imm_offset, imm_size) of the x86 instruction at the start
        of ``code`` (capstone's ``cs_x86_encoding``; a handle opened with details); None when
        the bytes are no instruction."""
        encoding = self._disassembled(code, address, 1, _x86_encoding)
        if len(encoding) != 5:
            return None
        _modrm, disp_offset, disp_size, imm_offset, imm_size = encoding
        return disp_offset, disp_size, imm_offset, imm_size

    def _disassembled(
        self, code: bytes, address: int, count: int, read: Callable[[int, int], bytes]
    ) -> bytes:
        """``cs_disasm`` of ``code``: what ``read`` takes from its ``cs_insn`` array (given
        the array's address and how many it holds), the array freed after. A plain call:
        a context manager made of a generator cost a fifth of a ``-R`` lookup's search."""
        instructions = ctypes.c_void_p()
        decoded = self._library.cs_disasm(
            self._handle, bytes(code), len(code), address, count, ctypes.byref(instructions)
        )
        try:
            return read(instructions.value or 0, decoded)
        finally:
            if decoded:
                self._library.cs_free(instructions, decoded)


def _instructions(array: int, decoded: int) -> bytes:
    """The ``cs_insn`` array's bytes."""
    return ctypes.string_at(array, decoded * _INSN.size) if decoded else b""


def _x86_encoding(array: int, decoded: int) -> bytes:
    """The five ``cs_x86_encoding`` bytes of the first instruction (none without one, or
    without its details)."""
    if not decoded:
        return b""
    (detail,) = struct.unpack("<Q", ctypes.string_at(array + _DETAIL_POINTER, 8))
    return ctypes.string_at(detail + _X86_ENCODING, 5) if detail else b""


def open_handle(arch: int, mode: int, att_syntax: bool, detail: bool = False) -> Handle | None:
    """A handle of the library for ``arch`` and ``mode`` (AT&T syntax, details, when
    asked); None when the library is not capstone 5's or refuses them."""
    library = _library()
    if library is None:
        return None
    handle = ctypes.c_size_t()
    if library.library.cs_open(arch, mode, ctypes.byref(handle)) != 0:
        return None
    calls = library.library
    refused = att_syntax and calls.cs_option(handle, _CS_OPT_SYNTAX, _CS_OPT_SYNTAX_ATT) != 0
    refused = refused or (detail and calls.cs_option(handle, _CS_OPT_DETAIL, _CS_OPT_ON) != 0)
    if refused:
        calls.cs_close(ctypes.byref(handle))
        return None
    return Handle(library, handle.value)
