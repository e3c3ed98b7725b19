#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Fails when a built module has a symbol name of KSYM_NAME_LEN characters or more.
#
# Why: module_address_lookup() (kernel/module/kallsyms.c, 6.12.118 and 7.3) copies a module symbol's
# name with strscpy(namebuf, sym, KSYM_NAME_LEN) and returns what strscpy returns: -E2BIG for a name
# that does not fit. __sprint_symbol() (kernel/kallsyms.c) takes that as the name's length and writes
# "+0xoff/0xsize" 7 bytes before its buffer, on the stack. Every %pB/%pS of an address in such a
# function corrupts the printer's stack: the oops printer's, /proc/PID/stack's, and the module's own
# stacks files (the 7.3 boot test died of it). Rust's v0 mangling puts generic arguments into the name,
# so an iterator chain over closures can reach 512 characters; see sys/stacktrace.rs.
#
# Usage: scripts/symbols.sh KDIR MODULE.ko...
set -eu
kdir=$1
shift
len=$(sed -n 's/^#define KSYM_NAME_LEN \([0-9][0-9]*\).*/\1/p' "$kdir/include/linux/kallsyms.h" 2>/dev/null | head -n 1)
len=${len:-512}
rc=0
for ko in "$@"; do
	long=$(llvm-nm --defined-only --just-symbol-name "$ko" | awk -v n="$len" 'length($0) >= n')
	if [ -n "$long" ]; then
		echo "error: $ko has symbols of $len (KSYM_NAME_LEN) characters or more; printing a stack" \
			"through them corrupts the kernel stack (see scripts/symbols.sh). Shorten them" \
			"(fewer nested generic adapters, or a plain loop):" >&2
		echo "$long" | awk '{ print "  " length($0) " " substr($0, 1, 160) "..." }' >&2
		rc=1
	fi
done
exit $rc
