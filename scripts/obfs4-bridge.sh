#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Runs obfs4proxy as a managed server transport in front of a Cairn relay (docs/PROTOCOL.md
# section 7.3, docs/OPERATING.md "obfs4"), and prints the relay's cairn+obfs4 address on
# stdout, alone on one line, once obfs4proxy listens. Then stays in the foreground for as long
# as obfs4proxy runs: run it under systemd (or any supervisor) next to cairn-relay.
#
#   obfs4-bridge.sh --address ADDR --listen HOST:PORT --state DIR [--public HOST:PORT]
#                   [--iat-mode 0|1|2]
#
#   --address   the relay's direct address, as `cairn-relay address` prints it
#               (cairn://KEY@HOST:PORT): obfs4proxy passes what it unwraps to HOST:PORT
#               (TOR_PT_ORPORT), so HOST must be an IP address; 127.0.0.1 is the usual one
#   --listen    where obfs4proxy listens (TOR_PT_SERVER_BINDADDR), e.g. 0.0.0.0:9443
#   --state     obfs4proxy's state directory (created 0700): its keys live there, so keep it
#               across restarts or every user needs a new address; <relay data>/obfs4 is good
#   --public    HOST:PORT written into the address (default: where obfs4proxy listens)
#   --iat-mode  0 (default), 1 or 2: obfs4's packet timing obfuscation (2 costs most)
#
# The program is $CAIRN_OBFS4PROXY, else obfs4proxy from PATH. Exit status: 0 after SIGTERM
# or SIGINT, 1 when obfs4proxy refuses to start, fails, or exits on its own, 2 for bad usage.
# obfs4proxy's stdin is a pipe held by this script (TOR_PT_EXIT_ON_STDIN_CLOSE=1), so it ends
# with the script however the script ends.
set -euo pipefail

usage() {
	sed -n '9,10p' "$0" | sed 's/^#  *//' >&2
	exit 2
}

address="" listen="" state="" public="" iat=0
while [ $# -gt 0 ]; do
	[ $# -ge 2 ] || usage
	case "$1" in
	--address) address=$2 ;;
	--listen) listen=$2 ;;
	--state) state=$2 ;;
	--public) public=$2 ;;
	--iat-mode) iat=$2 ;;
	*) usage ;;
	esac
	shift 2
done
[ -n "$address" ] && [ -n "$listen" ] && [ -n "$state" ] || usage
case "$iat" in 0 | 1 | 2) ;; *) usage ;; esac

# cairn://KEY@HOST:PORT: the key for the new address, HOST:PORT for obfs4proxy.
if ! [[ $address =~ ^cairn://([A-Za-z0-9_-]{43})@(.+:[0-9]+)$ ]]; then
	echo "obfs4-bridge: --address must be the relay's direct cairn:// address" >&2
	exit 2
fi
key=${BASH_REMATCH[1]}
orport=${BASH_REMATCH[2]}

mkdir -p "$state"
chmod 700 "$state"
program=${CAIRN_OBFS4PROXY:-obfs4proxy}

coproc PT {
	exec env TOR_PT_MANAGED_TRANSPORT_VER=1 \
		TOR_PT_SERVER_TRANSPORTS=obfs4 \
		TOR_PT_SERVER_BINDADDR="obfs4-$listen" \
		TOR_PT_SERVER_TRANSPORT_OPTIONS="obfs4:iat-mode=$iat" \
		TOR_PT_ORPORT="$orport" \
		TOR_PT_STATE_LOCATION="$state" \
		TOR_PT_EXIT_ON_STDIN_CLOSE=1 \
		"$program" 2>/dev/null
}
pt_pid=$PT_PID
pt_out=${PT[0]}
trap 'kill "$pt_pid" 2>/dev/null; wait "$pt_pid" 2>/dev/null; exit 0' TERM INT

# pt-spec v1: VERSION 1, SMETHOD obfs4 ADDR:PORT ARGS:cert=...,iat-mode=N, SMETHODS DONE;
# or ENV-ERROR, VERSION-ERROR, SMETHOD-ERROR with a reason. 30 s for all of it.
cert="" mode="" bound=""
while IFS= read -r -t 30 line <&"$pt_out"; do
	case "$line" in
	"SMETHOD obfs4 "*)
		args=${line#*ARGS:}
		bound=${line#SMETHOD obfs4 }
		bound=${bound%% *}
		[[ $args =~ (^|,)cert=([A-Za-z0-9+/]{70})(,|$) ]] && cert=${BASH_REMATCH[2]}
		[[ $args =~ (^|,)iat-mode=([012])(,|$) ]] && mode=${BASH_REMATCH[2]}
		;;
	"SMETHODS DONE")
		break
		;;
	ENV-ERROR* | VERSION-ERROR* | SMETHOD-ERROR*)
		echo "obfs4-bridge: obfs4proxy refused: ${line//[^[:print:]]/?}" >&2
		kill "$pt_pid" 2>/dev/null || true
		exit 1
		;;
	esac
done
if [ -z "$cert" ] || [ -z "$mode" ]; then
	echo "obfs4-bridge: obfs4proxy ($program) did not announce an obfs4 listener" >&2
	kill "$pt_pid" 2>/dev/null || true
	exit 1
fi

[ -n "$public" ] || public=$bound
echo "cairn+obfs4://$key@$public?cert=$cert&iat-mode=$mode"

# Keep reading (a Go program writing to a closed pipe dies of SIGPIPE) until it exits.
while IFS= read -r line <&"$pt_out"; do :; done
wait "$pt_pid" 2>/dev/null || true
echo "obfs4-bridge: obfs4proxy exited" >&2
exit 1
