#!/bin/sh
# SPDX-License-Identifier: MIT
# `make run`: creates the data directory on first use, prints the relay address, then serves
# with the embedded defaults (127.0.0.1:7443). Usage: run-relay.sh BUILD_DIR DATA_DIR
set -eu
build=$1 data=$2
relay="$build/relay/cairn-relay"
[ -f "$data/relay.key" ] || "$relay" init --data "$data" >/dev/null
echo "relay address: $("$relay" address --data "$data")"
exec "$relay" run --data "$data"
