#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the normal and the ASan+UBSan suites side by side (make test). Most integration tests
# spend their time waiting (outages, latencies, kill loops, soak), so the two passes overlap
# well on two cores. Each pass keeps its own order (integration tests are RUN_SERIAL within
# it); their outputs are printed one after the other. The fairness tests measure latency
# beside an attacker, so they run afterwards, each build in turn, on an otherwise quiet
# machine. Usage: test-both.sh BUILD ASAN_BUILD
set -u
build=$1 asan=$2
jobs=$(nproc 2>/dev/null || echo 2)
quiet='^test_it_fairness'
logs=$(mktemp -d)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd "$build" && ctest --output-on-failure -j "$jobs" -E "$quiet" >"$logs/normal" 2>&1; echo $? >"$logs/normal.rc") &
(cd "$asan" && ctest --output-on-failure -j "$jobs" -E "$quiet" >"$logs/asan" 2>&1; echo $? >"$logs/asan.rc") &
wait
for pass in normal asan; do
	dir=$build
	[ "$pass" = asan ] && dir=$asan
	(cd "$dir" && ctest --output-on-failure -R "$quiet" >>"$logs/$pass" 2>&1) || echo 1 >"$logs/$pass.rc"
done
status=0
for pass in normal asan; do
	echo "==== $pass ($( [ "$pass" = normal ] && echo "$build" || echo "$asan" )) ===="
	cat "$logs/$pass"
	[ "$(cat "$logs/$pass.rc")" = 0 ] || status=1
done
rm -rf "$logs"
[ $status = 0 ] && echo "make test: both passes passed" || echo "make test: FAILED"
exit $status
