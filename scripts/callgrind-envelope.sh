#!/bin/sh
# SPDX-License-Identifier: MIT
# Relay instructions per envelope under callgrind, for online, durable and drain: runs
# cairn-bench against a relay under `valgrind --tool=callgrind` and, through cairn-bench --mark,
# dumps callgrind's counts where each measured part begins and ends. Instruction counts do not
# move with the machine's load, so they compare one relay with another (a commit with the
# next) where rates on a shared machine cannot.
#
# Per part it prints the relay's instructions (all its threads: loop, storage, thread pool)
# divided by the envelopes of that part, and the functions with the most instructions of
# their own (callgrind_annotate), per envelope:
#   online-4-at-R/s    4 senders -> 4 owners, 1 KiB, window 64, at R/s offered (a rate
#                      valgrind keeps up with; a fixed one, since how many envelopes share a
#                      frame, and so the instructions per envelope, move with the rate): the
#                      envelopes delivered in the measured interval
#   durable-S          S senders (1 and 4), COUNT envelopes of 1 KiB from the first SEND until
#                      every SEND is answered after its fsync, owners offline
#   drain-S            the owners come back (AUTH, SUBSCRIBE) and receive and ACK all of them
#   handshake          per connection: the bare Noise XX handshake (cairn-bench handshakes,
#                      three rounds of a third of --handshakes)
#   create-subscribe   per connection: CREATE and SUBSCRIBE after it
#
# Usage: callgrind-envelope.sh [--relay PATH] [--bench PATH] [--rate R] [--count N]
#                              [--handshakes N] [--duration S] [--top N] [--keep DIR]
#   --relay    cairn-relay to measure (default build/relay/cairn-relay): build an older commit
#              in a worktree of its own and pass its relay here; the generator stays the same
#   --bench    cairn-bench (default build/tests/bench/cairn-bench)
#   --rate     online envelopes/s offered (default 200)
#   --count    envelopes per durable run (default 10000)
#   --handshakes  connections for the handshake parts (default 1500; 0: none)
#   --duration measured seconds per online run (default 4)
#   --top      functions shown per part (default 8)
#   --keep     keep the callgrind files in DIR (default: a scratch directory, removed)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
relay=$root/build/relay/cairn-relay
bench=$root/build/tests/bench/cairn-bench
rate=200 count=10000 handshakes=1500 duration=4 top=8 keep=
while [ $# -gt 0 ]; do
	case $1 in
	--relay) relay=$2 ;;
	--bench) bench=$2 ;;
	--rate) rate=$2 ;;
	--count) count=$2 ;;
	--handshakes) handshakes=$2 ;;
	--duration) duration=$2 ;;
	--top) top=$2 ;;
	--keep) keep=$2 ;;
	*) echo "usage: $0 [--relay PATH] [--bench PATH] [--rate R] [--count N] [--handshakes N] [--duration S] [--top N] [--keep DIR]" >&2
	   exit 2 ;;
	esac
	shift 2
done
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null || {
	echo "$0: valgrind (callgrind_control, callgrind_annotate) is needed" >&2
	exit 2
}
[ -x "$relay" ] && [ -x "$bench" ] || { echo "$0: $relay or $bench is missing" >&2; exit 2; }
relay=$(cd "$(dirname "$relay")" && pwd)/$(basename "$relay")

if [ -n "$keep" ]; then
	mkdir -p "$keep"
	dir=$(cd "$keep" && pwd)
else
	dir=$(mktemp -d /tmp/callgrind-envelope-XXXXXX)
	trap 'rm -rf "$dir"' EXIT
fi
: >"$dir/marks"

# The relay under callgrind; its other commands (init, address) run as they are.
cat >"$dir/relay.sh" <<EOF
#!/bin/sh
[ "\$1" = run ] || exec "$relay" "\$@"
exec valgrind --tool=callgrind --callgrind-out-file="$dir/cg.%p" "$relay" "\$@" 2>>"$dir/valgrind.log"
EOF
# cairn-bench --mark: LABEL PID ENVELOPES. Dumps (and zeroes) the relay's counts; the newest
# dump file holds the part that ends here.
cat >"$dir/mark.sh" <<EOF
#!/bin/sh
callgrind_control -d "\$1" "\$2" >/dev/null || exit 1
echo "\$1 \$3 \$(ls -t "$dir"/cg.\$2.* | head -n 1)" >>"$dir/marks"
EOF
chmod +x "$dir/relay.sh" "$dir/mark.sh"

echo "relay: $relay" >&2
# The valgrind relay starts in seconds, not milliseconds: its readiness wait is 10 s.
"$bench" --relay "$dir/relay.sh" --mark "$dir/mark.sh" --senders 4 --size 1024 \
	--online-rate "$rate" --duration "$duration" online >"$dir/online.txt"
"$bench" --relay "$dir/relay.sh" --mark "$dir/mark.sh" --durable-count "$count" durable \
	>"$dir/durable.txt"
if [ "$handshakes" -gt 0 ]; then
	"$bench" --relay "$dir/relay.sh" --mark "$dir/mark.sh" --connections "$handshakes" \
		handshakes >"$dir/handshakes.txt"
fi

printf '%-20s %10s %16s %14s\n' part count instructions 'per one'
while read -r label envelopes file; do
	case $label in *-from) continue ;; esac
	[ "$envelopes" -gt 0 ] || continue
	ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p;s/^totals: *\([0-9]*\).*/\1/p' "$file" | head -n 1)
	printf '%-20s %10d %16d %14.0f\n' "$label" "$envelopes" "$ir" "$(echo "$ir / $envelopes" | bc -l)"
done <"$dir/marks"
echo
while read -r label envelopes file; do
	case $label in *-from) continue ;; esac
	[ "$envelopes" -gt 0 ] || continue
	echo "$label: the $top functions with the most instructions of their own, per envelope (or connection)"
	# A dump taken mid-run charges the frames on each thread's stack (main, the thread
	# starts) with everything below them: they are left out.
	callgrind_annotate --threshold=100 "$file" 2>/dev/null |
		awk -v n="$envelopes" -v top="$top" '
			/file:function/ { on = 1; next }
			!on || !/^ *[0-9,]+ / { next }
			/\(below main\)|libc_start|:main |:cmd_run |:relay_server_run |clone\.S|:start_thread |ld-linux/ { next }
			shown < top {
				ir = $1; gsub(",", "", ir)
				fn = $0; sub(/^ *[0-9,]+ +(\([^)]*\) +)?/, "", fn)
				printf "  %10.0f  %s\n", ir / n, fn; shown++
			}'
done <"$dir/marks"
