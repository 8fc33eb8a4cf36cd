#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Rebuild the bad-input files the tests feed to every command:
#
#   userspace-hello       a user-space x86-64 program with .symtab (not a kernel)
#   vmlinux-gcc-stripped  ../vmlinux-samples/vmlinux-gcc without .symtab and DWARF
#   vmlinux-gcc-nodebug   ../vmlinux-samples/vmlinux-gcc with .symtab but no DWARF
#
# Tests use the committed files; rerun this only to change them (after the
# samples are rebuilt, for instance).  Needs gcc and binutils objcopy.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
samples=$here/../vmlinux-samples
GCC=${GCC:-gcc}
OBJCOPY=${OBJCOPY:-objcopy}

# -ffile-prefix-map and a fixed build id style keep the output independent of
# the checkout path.
$GCC -O2 -g0 -ffile-prefix-map="$here"=. -Wl,--build-id=sha1 \
	-o "$here/userspace-hello" "$here/hello.c"
$OBJCOPY --strip-all "$samples/vmlinux-gcc" "$here/vmlinux-gcc-stripped"
$OBJCOPY --strip-debug "$samples/vmlinux-gcc" "$here/vmlinux-gcc-nodebug"
echo "built userspace-hello vmlinux-gcc-stripped vmlinux-gcc-nodebug"
