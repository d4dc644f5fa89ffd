#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs every libFuzzer target for N seconds over a scratch copy of its seed corpus and prints
# the executions each made. Usage: fuzz.sh BUILD_DIR SECONDS
set -eu
build=$1 secs=$2
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
for bin in "$build"/fuzz/fuzz_*; do
	case "$bin" in *_replay) continue ;; esac
	[ -x "$bin" ] || continue
	name=$(basename "$bin"); target=${name#fuzz_}
	work=$(mktemp -d)
	cp "$root/fuzz/corpus/$target"/* "$work"/ 2>/dev/null || true
	mkdir -p "$root/fuzz/artifacts"
	if "$bin" -max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix="$root/fuzz/artifacts/$target-" "$work" >"$work.log" 2>&1; then
		execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work.log" | grep -o '[0-9]*$')
		cov=$(grep -o 'cov: [0-9]*' "$work.log" | tail -1)
		echo "fuzz $target: ${secs}s, $execs executions, $cov, no findings"
	else
		echo "fuzz $target: FOUND A CRASH (see $work.log and fuzz/artifacts/)"; status=1
		tail -30 "$work.log"
	fi
	rm -rf "$work"
done
exit $status
