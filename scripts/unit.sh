#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make unit`: the host unit tests, in seconds, no kernel and no guest. The module's kernel-free logic
# (logic/unit: the files that need only `core`, compiled as they are) and the tool's (its parsers and
# exporters on saved module output; its pictures as headless Chromium renders them). Clippy on the unit
# crate first (warnings are errors). One line per
# crate, then `N passed, N failed` over the test functions; a crate that does not build counts one failure.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH=$HOME/.cargo/bin:$PATH
passed=0 failed=0
run() { # name, cargo arguments...
	local name=$1 out rc p f
	shift
	out=$(cargo "$@" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	read -r p f < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' <<<"$out")
	# A failure the counts miss (no build, or a test binary that died) counts one.
	[ "$rc" = 0 ] || [ "$f" != 0 ] || f=1
	echo "unit: $name: $p passed, $f failed"
	passed=$((passed + p)) failed=$((failed + f))
}
if ! (cd "$repo/logic/unit" && cargo clippy --locked -q --all-targets -- -D warnings); then
	echo "unit: clippy on logic/unit failed (1 failure)"
	failed=$((failed + 1))
fi
run logic test --locked -q --manifest-path "$repo/logic/unit/Cargo.toml"
run tool test --locked -q --release --manifest-path "$repo/tools/resched/Cargo.toml"
# The tool's pictures rendered by headless Chromium and the screenshots read back (its binary is built
# by the test run above).
out=$(/usr/bin/python3 "$repo/tools/resched/tests/browser.py" "$repo/tools/resched/target/release/resched" 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/  /'
read -r p f < <(grep -E '^[0-9]+ passed, [0-9]+ failed$' <<<"$out" | awk '{ print $1, $3 } END { if (NR == 0) print 0, 1 }')
[ "$rc" = 0 ] || [ "$f" != 0 ] || f=1
echo "unit: browser: $p passed, $f failed"
passed=$((passed + p)) failed=$((failed + f))
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
