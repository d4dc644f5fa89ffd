#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs every libFuzzer target for N seconds over a scratch copy of its seed corpus and prints,
# per target, the executions it made, the coverage it reached (cov: edges, ft: features) and
# the corpus it ended with. Exits 1 if any target found a crash, leak, timeout or failed check;
# the input that did it is kept in fuzz/artifacts/.
# FUZZ_JOBS targets run at once (default 1): each fuzzer is one process on one core, so with
# one job per core every target still gets its N seconds of a core to itself; the rows are
# printed in the targets' order whatever order they finish in.
# Usage: fuzz.sh BUILD_DIR SECONDS [TARGET...]   (default: every target built)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
# Undefined behaviour is a finding too: libFuzzer only counts what stops the process.
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

# fuzz.sh --one BUILD_DIR SECONDS TARGET OUT: one target (run by the pool below); writes its
# row to OUT/TARGET.row, and on a finding the end of its log to OUT/TARGET.fail.
if [ "${1:-}" = --one ]; then
	build=$2 secs=$3 target=$4 out=$5
	bin=$build/fuzz/fuzz_$target
	work=$(mktemp -d)
	cp "$root/fuzz/corpus/$target"/* "$work"/ 2>/dev/null || true
	log="$work.log"
	# -timeout: a single input running this long is a hang, and a finding.
	if "$bin" -max_total_time="$secs" -timeout=25 -print_final_stats=1 \
		-artifact_prefix="$root/fuzz/artifacts/$target-" "$work" >"$log" 2>&1; then
		result="no findings" failed=0
	else
		result="FINDING (log: $log, input: fuzz/artifacts/$target-*)" failed=1
	fi
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" 2>/dev/null |
		grep -o '[0-9]*$' || true)
	# The last status line libFuzzer printed: "#N DONE cov: C ft: F corp: K/..."
	last=$(grep -E '^#[0-9]+' "$log" 2>/dev/null | grep 'cov:' | tail -1 || true)
	cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\).*/\1/p')
	printf '%-10s %8s %12s %8s %8s %8s  %s\n' "$target" "$secs" "${execs:-?}" "${cov:-?}" \
		"${ft:-?}" "${corp:-?}" "$result" >"$out/$target.row"
	if [ "$failed" -eq 1 ]; then
		tail -40 "$log" >"$out/$target.fail"
	else
		rm -f "$log"
	fi
	rm -rf "$work"
	exit 0
fi

build=$1 secs=$2
shift 2
jobs=${FUZZ_JOBS:-1}
targets=
for bin in "$build"/fuzz/fuzz_*; do
	case "$bin" in *_replay | *_seed) continue ;; esac
	[ -x "$bin" ] || continue
	name=$(basename "$bin"); target=${name#fuzz_}
	if [ $# -gt 0 ]; then
		case " $* " in *" $target "*) ;; *) continue ;; esac
	fi
	targets="$targets $target"
done
if [ -z "$targets" ]; then
	echo "fuzz.sh: no fuzz targets in $build/fuzz (configure with CC=clang -DCAIRN_FUZZ=ON)" >&2
	exit 1
fi

mkdir -p "$root/fuzz/artifacts"
out=$(mktemp -d)
# shellcheck disable=SC2086 # one target a line
printf '%s\n' $targets | xargs -P "$jobs" -I '{}' sh "$0" --one "$build" "$secs" '{}' "$out" ||
	true # a target that wrote no row is reported below
printf '%-10s %8s %12s %8s %8s %8s  %s\n' target seconds executions cov ft corpus result
status=0
for target in $targets; do
	if [ -f "$out/$target.row" ]; then
		cat "$out/$target.row"
	else
		echo "$target: did not run" && status=1
	fi
	if [ -f "$out/$target.fail" ]; then
		cat "$out/$target.fail"
		status=1
	fi
done
rm -rf "$out"
exit $status
