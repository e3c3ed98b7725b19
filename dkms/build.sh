#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# dkms/build.sh KDIR: builds resched_probe.ko in the current folder against the kernel build tree KDIR,
# as DKMS does (dkms.conf's MAKE), with the toolchain that kernel was built with. Says plainly what is
# missing when it cannot: a Rust module needs more of the kernel than a C one, and distributions' header
# packages often lack it.
set -euo pipefail
kdir=${1:?usage: dkms/build.sh KDIR}
cfg=$kdir/.config
fail() { printf 'resched_probe: cannot build against %s: %s\n' "$kdir" "$*" >&2; exit 1; }

[ -f "$cfg" ] || fail "no .config there (not a configured kernel build tree)"
grep -q '^CONFIG_RUST=y' "$cfg" || fail "the kernel was built without CONFIG_RUST=y; resched_probe is a Rust module and needs a Rust-enabled kernel"
# What an out-of-tree Rust module compiles against: the kernel crate's metadata and the macros crate
# (made by the kernel's own build), bindgen's parameters, and the scheduler's private header that
# sys/helpers.c includes (kernel/sched/sched.h: in the source tree, not in header packages).
missing=()
for f in rust/libkernel.rmeta rust/libcore.rmeta rust/bindgen_parameters kernel/sched/sched.h; do
	[ -e "$kdir/$f" ] || missing+=("$f")
done
compgen -G "$kdir/rust/libmacros*.so" >/dev/null || missing+=("rust/libmacros.so")
[ ${#missing[@]} = 0 ] || fail "missing ${missing[*]}: build against the tree the kernel was built in (header packages such as Debian's linux-headers-* ship no Rust metadata and no kernel/sched/)"

# The rustc the kernel was built with, exactly: the metadata of another version does not load.
want=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$cfg")
rustc=
for c in ${RUSTC:-} /usr/bin/rustc "$(command -v rustc || true)"; do
	[ -n "$c" ] && [ -x "$c" ] || continue
	if [ -z "$want" ] || [ "$("$c" --version 2>/dev/null)" = "$want" ]; then rustc=$c; break; fi
done
[ -n "$rustc" ] || fail "the kernel was built with '$want' and no rustc of that version was found (set RUSTC=/path/to/rustc)"
# Clang and LLVM's tools of the kernel's version when it was built with them (LLVM=1).
llvm=
if grep -q '^CONFIG_CC_IS_CLANG=y' "$cfg"; then
	llvm=LLVM=1
	major=$(( $(sed -n 's/^CONFIG_CLANG_VERSION=//p' "$cfg") / 10000 ))
	[ -d "/usr/lib/llvm-$major/bin" ] && export PATH="/usr/lib/llvm-$major/bin:$PATH"
	command -v clang >/dev/null || fail "the kernel was built with clang $major and no clang was found (install clang-$major)"
fi
bindgen=${BINDGEN:-$(command -v bindgen || true)}
[ -n "$bindgen" ] || fail "bindgen is needed (the module generates its bindings with the kernel's flags): install bindgen"
arch=
grep -q '^CONFIG_ARM64=y' "$cfg" && [ "$(uname -m)" != aarch64 ] && arch=ARCH=arm64
exec make -C "$kdir" M="$PWD" $llvm $arch RUSTC="$rustc" HOSTRUSTC="$rustc" BINDGEN="$bindgen" modules
