#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the Debian 12 packages Cairn builds and tests with, only if any is missing, so that
# `make run` and `make test` work on a fresh machine. Uses sudo when not run as root.
set -eu
PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev
      libuv1-dev libsodium-dev libmsgpack-dev libsqlite3-dev libinih-dev
      libcmocka-dev libcjson-dev libqrencode-dev valgrind iproute2 iptables microsocks
      mosquitto libmosquitto-dev python3 python3-cryptography
      libssl-dev openssl libwslay-dev nginx obfs4proxy
      faketime
      debhelper lintian scdoc man-db adduser
      e2fsprogs mount
      libfuse3-dev fuse3
      postgresql-15 libpq-dev haproxy
      nats-server libnats-dev"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
