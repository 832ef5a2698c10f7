#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The kernel WireGuard tests, run inside the test VM (tests/vm/run-kernel-tests) chrooted in
# the host's tree: the backend test programs with the kernel backend, then the two-namespace
# ping through interfaces programmed by nexd's backend.  TAP; exits with the number of
# failed tests.
#
#   kernel-tests.sh BUILDDIR SRCDIR
set -u
builddir=${1:?usage: kernel-tests.sh BUILDDIR SRCDIR}
srcdir=${2:?usage: kernel-tests.sh BUILDDIR SRCDIR}
n=0
failed=0

run() {
	local name=$1 t0 t1 rc
	shift
	n=$((n + 1))
	echo "# --- $name"
	t0=${EPOCHREALTIME/./}
	"$@" 2>&1 | sed 's/^/#   /'
	rc=${PIPESTATUS[0]}
	t1=${EPOCHREALTIME/./}
	if [ "$rc" -eq 0 ]; then
		echo "ok $n - $name ($(((t1 - t0) / 1000)) ms)"
	elif [ "$rc" -eq 77 ]; then
		echo "ok $n - $name # SKIP"
	else
		echo "not ok $n - $name (exit $rc)"
		failed=$((failed + 1))
	fi
}

echo "# kernel $(uname -r)"
run "wg_kernel_check: the kernel backend against the kernel" \
	"$builddir/tests/vm/wg_kernel_check"
if [ -x "$builddir/tests/unit/test_nexd_wg" ]; then
	run "test_nexd_wg with NEXD_TEST_WG_BACKEND=kernel" \
		env NEXD_TEST_WG_BACKEND=kernel "$builddir/tests/unit/test_nexd_wg"
else
	echo "# test_nexd_wg not built: skipped"
fi
run "kernel-ping: two namespaces, WireGuard programmed by nexd's backend" \
	"$srcdir/tests/vm/kernel-ping.sh" "$builddir/tests/vm/nexd_wg_tool"
run "kernel-nexd: two devices running nexd --wg-backend kernel ping each other" \
	"$srcdir/tests/vm/kernel-nexd.sh" "$builddir" "$srcdir"
echo "1..$n"
echo "# $((n - failed)) passed, $failed failed"
exit "$failed"
