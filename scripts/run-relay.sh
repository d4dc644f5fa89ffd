#!/bin/sh
# SPDX-License-Identifier: MIT
# `make run`: creates the data directory on first use, prints the relay address, then serves
# with the embedded defaults. Usage: run-relay.sh BUILD_DIR DATA_DIR
set -eu
build=$1 data=$2
relay="$build/relay/cairn-relay"
if [ ! -x "$relay" ]; then
	echo "run-relay: $relay is not built yet (the relay lands with issue 3)." >&2
	echo "run-relay: the build succeeded; the protocol library and tests are in $build." >&2
	exit 0
fi
[ -f "$data/relay.key" ] || "$relay" init --data "$data"
echo "relay address: $("$relay" address --data "$data")"
exec "$relay" run --data "$data"
