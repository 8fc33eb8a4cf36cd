#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Rebuild the kernel-like sample images from src/ and regenerate
# MANIFEST.json.  Tests use the committed binaries; this script is only
# needed to change them.  Usage: sh build.sh
#
# Needs gcc (with LTO plugin) + GNU ld, clang + ld.lld, llvm-dwarfdump,
# binutils nm/readelf/objdump and python3.  Override the tools with GCC=,
# CLANG=, LD=, LLD=.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$here/src
GCC=${GCC:-gcc}
CLANG=${CLANG:-clang}
LD=${LD:-ld}
LLD=${LLD:-ld.lld}
work=$(mktemp -d "${TMPDIR:-/tmp}/vmlinux-samples.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# Roughly the kernel's x86-64 KBUILD_CFLAGS.  The source directory is
# mapped to a fixed path so DWARF and build ids do not depend on where
# the tree is checked out.
CFLAGS="-O2 -g -gdwarf-5 -std=gnu11 -ffreestanding -fno-builtin
 -fno-pie -fno-pic -mcmodel=kernel -mno-red-zone -mno-mmx -mno-sse -mno-sse2
 -fno-stack-protector -fno-common -fno-jump-tables -fno-omit-frame-pointer
 -fno-asynchronous-unwind-tables -fno-unwind-tables
 -ffile-prefix-map=$src=/usr/src/linux-sample -Wall -Werror"
LDFLAGS="-nostdlib -static -no-pie -T vmlinux.lds -Wl,--build-id=sha1"
GNU_LDFLAGS="-Wl,--no-warn-rwx-segments"	# binutils >= 2.39, as the kernel
LLD_LDFLAGS="-fuse-ld=lld"
# The code generation flags are repeated at link time (LTO needs them);
# clang would call them unused there.  clang's assembler ignores the
# prefix map for head.S; a fixed compilation dir keeps the path out.
CLANG_CFLAGS="-Wno-unused-command-line-argument
 -fdebug-compilation-dir=/usr/src/linux-sample"
# gcc LTO: a small minimum partition size splits this tiny program into
# several partitions as a real kernel would be, so statics called across
# partitions become name.lto_priv.N.
GCC_LTO="-flto=4 -flto-partition=balanced --param=lto-min-partition=10"

OBJS="head main lib widget drv_alpha drv_beta drv_gamma"

# info FILE COMPILER "COMPILE FLAGS" "LINK FLAGS": one line of the TSV that
# manifest.py records (the checkout path is written as <src>).
info() {
	# shellcheck disable=SC2086
	printf '%s\t%s\t%s\t%s\n' "$1" "$(echo $2)" "$(echo $3 | sed "s|$src|<src>|g")" \
		"$(echo $4 | sed "s|$src|<src>|g")" >>"$work/build-info.tsv"
}

fail() {
	echo "build.sh: $*" >&2
	exit 1
}

# build NAME CC "CC FLAGS" "LTO FLAGS" "LINK-ONLY FLAGS"
build() {
	name=$1 cc=$2 ccflags=$3 lto=$4 linkextra=$5
	out=$work/$name
	mkdir -p "$out"
	objs=
	for o in $OBJS; do
		if [ "$o" = head ]; then
			f=head.S
			oflags=$ccflags		# plain assembly, never LTO
		else
			f=$o.c
			oflags="$ccflags $lto"
		fi
		# shellcheck disable=SC2086
		(cd "$src" && $cc $CFLAGS $oflags -c "$f" -o "$out/$o.o")
		objs="$objs $out/$o.o"
	done
	# shellcheck disable=SC2086
	(cd "$src" && $cc $CFLAGS $ccflags $lto $LDFLAGS $linkextra -o "$out/vmlinux" $objs)
	cp "$out/vmlinux" "$here/vmlinux-$name"
	info "vmlinux-$name" "$cc" "$CFLAGS $ccflags $lto" "$CFLAGS $ccflags $lto $LDFLAGS $linkextra"
	echo "built vmlinux-$name"
}

# module NAME CC "CC FLAGS" RELOCATABLE-LINKER: an ET_REL object made as a
# .ko is (compile with -ffunction-sections, then ld -r with a build id).
module() {
	name=$1 cc=$2 ccflags=$3 ld=$4
	# shellcheck disable=SC2086
	(cd "$src" && $cc $CFLAGS $ccflags -ffunction-sections -c mod/sample_mod.c \
		-o "$work/sample_mod-$name.o")
	$ld -r --build-id=sha1 -o "$here/sample_mod-$name.ko" "$work/sample_mod-$name.o"
	info "sample_mod-$name.ko" "$cc" "$CFLAGS $ccflags -ffunction-sections" \
		"$ld -r --build-id=sha1"
	echo "built sample_mod-$name.ko"
}

build gcc "$GCC" "" "" "$GNU_LDFLAGS"
build gcc-lto "$GCC" "" "$GCC_LTO" "$GNU_LDFLAGS"
build clang "$CLANG" "$CLANG_CFLAGS" "" "$LLD_LDFLAGS"
build clang-thinlto "$CLANG" "$CLANG_CFLAGS" "-flto=thin" "$LLD_LDFLAGS"
build clang-lto "$CLANG" "$CLANG_CFLAGS" "-flto" "$LLD_LDFLAGS"
module gcc "$GCC" "" "$LD"
module clang "$CLANG" "$CLANG_CFLAGS" "$LLD"

# Quick nm checks: fail loudly when a compiler stops producing a property
# this folder exists to provide.  manifest.py --check verifies the rest
# (sizes, return addresses, inline chains) from nm/objdump/llvm-dwarfdump.
has() {	# has IMAGE ERE WHAT
	nm "$here/$1" | grep -Eq "$2" || fail "$1: no $3 (nm | grep -E '$2')"
}
lacks() {	# lacks IMAGE ERE WHAT
	if nm "$here/$1" | grep -Eq "$2"; then
		fail "$1: unexpected $3 (nm | grep -E '$2')"
	fi
}
for img in vmlinux-gcc vmlinux-gcc-lto vmlinux-clang vmlinux-clang-thinlto vmlinux-clang-lto; do
	n=$(nm "$here/$img" | grep -Ec ' [tT] name_show($|\.)') || true
	[ "$n" -ge 3 ] || fail "$img: $n name_show symbols, want 3"
	for s in linux_banner _stext _etext _sinittext _einittext widget_fatal widget_process; do
		has "$img" " $s\$" "$s"
	done
	readelf -n "$here/$img" | grep -q 'Build ID' || fail "$img: no GNU build id"
done
for img in vmlinux-gcc vmlinux-clang; do
	has "$img" ' T widget_get_id$' "out-of-line widget_get_id"
	has "$img" ' T account_syscall$' "out-of-line account_syscall"
	has "$img" ' T widget_debug_dump$' "widget_debug_dump"
done
for img in vmlinux-gcc-lto vmlinux-clang-thinlto vmlinux-clang-lto; do
	lacks "$img" ' account_syscall' "out-of-line account_syscall (LTO should inline it)"
	lacks "$img" ' widget_debug_dump' "widget_debug_dump (LTO should drop it)"
done
# ThinLTO imports widget_get_id() into its callers' modules and keeps the
# original; the whole-program LTOs drop it.
for img in vmlinux-gcc-lto vmlinux-clang-lto; do
	lacks "$img" ' widget_get_id' "out-of-line widget_get_id (LTO should inline it)"
done
has vmlinux-gcc '\.constprop\.[0-9]+$' ".constprop clone"
has vmlinux-gcc '\.isra\.[0-9]+$' ".isra clone"
has vmlinux-gcc '\.part\.[0-9]+$' ".part clone"
has vmlinux-gcc '\.cold$' ".cold part"
has vmlinux-gcc ' count\.[0-9]+$' "function-local static count.N"
has vmlinux-gcc-lto '\.lto_priv\.[0-9]+$' ".lto_priv promotion"
has vmlinux-clang-thinlto '\.llvm\.[0-9]+$' ".llvm promotion"
has vmlinux-clang-lto ' name_show\.[0-9]+$' "full-LTO rename of a clashing static"
# lib.c's global stats_show() keeps its name; the drivers' statics become
# stats_show.N under full LTO (manifest.py checks their sizes and calls).
for img in vmlinux-gcc vmlinux-gcc-lto vmlinux-clang vmlinux-clang-thinlto vmlinux-clang-lto; do
	has "$img" ' [tT] stats_show$' "stats_show (global in lib.c)"
done
has vmlinux-clang-lto ' t stats_show\.[0-9]+$' "full-LTO rename of a static beside a global"
for img in vmlinux-clang vmlinux-clang-thinlto vmlinux-clang-lto; do
	lacks "$img" '\.(constprop|isra|part|lto_priv)\.|\.cold$' "gcc-only suffix"
done
for m in gcc clang; do
	readelf -h "$here/sample_mod-$m.ko" | grep -q 'REL (Relocatable' ||
		fail "sample_mod-$m.ko is not ET_REL"
	readelf -SW "$here/sample_mod-$m.ko" | grep -q ' \.text\.name_show ' ||
		fail "sample_mod-$m.ko: no .text.name_show section"
done

python3 "$here/manifest.py" --check --output "$here/MANIFEST.json" \
	--build-info "$work/build-info.tsv"

# The folder is committed: keep it small.
total=$(du -sb "$here" | cut -f1)
[ "$total" -le 3000000 ] || fail "$here is $total bytes, limit 3000000"
echo "ok: $total bytes"
