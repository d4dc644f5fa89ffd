#!/bin/sh
# SPDX-License-Identifier: MIT
# test_it_deb: the Debian packages as an operator gets them (issue 16, part 1). Builds them
# from this tree (scripts/make-deb.sh, as `make deb`), runs lintian on the .changes and every
# .deb (any error fails), installs them with dpkg -i, checks what the packages set up (the
# system user, /var/lib/cairn-relay, the conffile, the key made by postinst as that user and
# kept by a reinstall, the man pages, the library and its pkg-config file), runs README.md's "Two people, one relay"
# with the INSTALLED /usr/bin/cairn and /usr/bin/cairn-relay (the relay started as the
# system user with setpriv, on a free loopback port, from a scratch data directory: there is
# no systemd in a test machine), and purges the packages, also when a step fails, so the
# machine is as before (the system user, which Debian keeps after a purge, is removed too
# when the test made it).
# Needs root (dpkg -i): exits 77 (ctest: skipped) otherwise, and when a cairn package is
# already installed (it would be replaced, then purged).
# Usage: it_deb.sh SOURCE_DIR
set -eu
src=$(cd "${1:?usage: it_deb.sh SOURCE_DIR}" && pwd)
PKGS="cairn-relay cairn libcairn0 libcairn-dev"
RELAY_USER=_cairn-relay

say() { echo "it_deb: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
if [ "$(id -u)" -ne 0 ]; then
	say "SKIP: needs root to install the packages with dpkg -i (run it as root, as CI does)"
	exit 77
fi
for p in $PKGS; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed'; then
		say "SKIP: $p is installed on this machine; this test would replace and purge it"
		exit 77
	fi
done
for tool in dpkg-buildpackage lintian man setpriv python3; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh)"
done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/cairn-it-deb.XXXXXX")
user_existed=0
getent passwd "$RELAY_USER" >/dev/null && user_existed=1
relay_pid=""
listen_pid=""
cleanup() {
	rc=$?
	[ -z "$listen_pid" ] || kill "$listen_pid" 2>/dev/null || true
	[ -z "$relay_pid" ] || { kill "$relay_pid" 2>/dev/null; wait "$relay_pid" 2>/dev/null; } || true
	# shellcheck disable=SC2086 # a list of package names
	dpkg --purge $PKGS >"$scratch/purge.log" 2>&1 || { cat "$scratch/purge.log" >&2; rc=1; }
	if [ "$user_existed" = 0 ] && getent passwd "$RELAY_USER" >/dev/null; then
		userdel "$RELAY_USER" || rc=1
		! getent group "$RELAY_USER" >/dev/null || groupdel "$RELAY_USER" || rc=1
	fi
	rm -rf "$scratch"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM
t0=$(date +%s)

# 1. Build, as `make deb` does (CAIRN_IT_DEB_DEBS=DIR: test the packages of `make deb` in DIR
# instead, e.g. while working on contrib/debian's scripts).
if [ -n "${CAIRN_IT_DEB_DEBS:-}" ]; then
	mkdir "$scratch/out"
	cp "$CAIRN_IT_DEB_DEBS"/*.deb "$CAIRN_IT_DEB_DEBS"/*.changes "$CAIRN_IT_DEB_DEBS"/*.buildinfo \
		"$scratch/out"/
else
	JOBS=${JOBS:-2} sh "$src/scripts/make-deb.sh" "$scratch/out" >"$scratch/build.log" 2>&1 ||
		{ tail -n 40 "$scratch/build.log" >&2; fail "make-deb.sh failed"; }
fi
t1=$(date +%s)
say "built in $((t1 - t0)) s: $(cd "$scratch/out" && echo *.deb)"

# 2. lintian: no errors (warnings are listed in /work/notes and docs; printed here).
lintian --fail-on error --display-info "$scratch/out"/*.changes >"$scratch/lintian.log" 2>&1 ||
	{ cat "$scratch/lintian.log" >&2; fail "lintian found errors"; }
say "lintian: $(grep -c '^E:' "$scratch/lintian.log" || true) errors," \
	"$(grep -c '^W:' "$scratch/lintian.log" || true) warnings," \
	"$(grep -c '^I:' "$scratch/lintian.log" || true) infos"
cat "$scratch/lintian.log" >&2
! grep -q 'no-symbols-control-file' "$scratch/lintian.log" || fail "libcairn0 has no symbols file"

# libcairn0's symbols control file lists exactly the functions client/libcairn.map exports, in
# its version node (the build itself fails when the library differs from it: rules, -c4).
dpkg-deb --ctrl-tarfile "$(echo "$scratch/out/libcairn0_"*.deb)" | tar -xOf - ./symbols \
	>"$scratch/symbols" || fail "libcairn0's package has no symbols control file"
sed -n 's/^ \([a-z_0-9]*\)@CAIRN_0 .*/\1/p' "$scratch/symbols" | sort >"$scratch/symbols.names"
sed -n 's/^[[:space:]]*\(cairn_[a-z_0-9]*\);$/\1/p' "$src/client/libcairn.map" | sort \
	>"$scratch/map.names"
cmp -s "$scratch/symbols.names" "$scratch/map.names" ||
	{ diff "$scratch/map.names" "$scratch/symbols.names" >&2; fail "symbols file != libcairn.map"; }
say "symbols: $(wc -l <"$scratch/symbols.names") functions, as libcairn.map"

# 3. Install the four packages, not their -dbgsym (dependencies from ${shlibs:Depends} must already be on a Debian 12 machine).
debs=""
for p in $PKGS; do
	debs="$debs $(echo "$scratch/out/${p}_"*.deb)"
done
# shellcheck disable=SC2086 # file names without blanks (mktemp's)
dpkg -i $debs >"$scratch/install.log" 2>&1 ||
	{ cat "$scratch/install.log" >&2; fail "dpkg -i failed"; }
grep -q '^cairn://' "$scratch/install.log" || fail "the install did not print the relay address"
t2=$(date +%s)

# 4. What the packages set up.
pw=$(getent passwd "$RELAY_USER") || fail "no system user $RELAY_USER"
uid=$(echo "$pw" | cut -d: -f3)
[ "$uid" -lt 1000 ] || fail "$RELAY_USER is not a system user (uid $uid)"
case $pw in *:/var/lib/cairn-relay:/usr/sbin/nologin) ;; *) fail "$RELAY_USER: $pw" ;; esac
[ "$(stat -c '%U %a' /var/lib/cairn-relay)" = "$RELAY_USER 700" ] ||
	fail "/var/lib/cairn-relay is $(stat -c '%U %a' /var/lib/cairn-relay), not $RELAY_USER 700"
[ "$(stat -c '%U %a' /var/lib/cairn-relay/relay.key)" = "$RELAY_USER 600" ] ||
	fail "relay.key is $(stat -c '%U %a' /var/lib/cairn-relay/relay.key), not $RELAY_USER 600"
[ "$(readlink /var/lib/cairn-relay/cairn-relay.conf)" = /etc/cairn-relay/cairn-relay.conf ] ||
	fail "/var/lib/cairn-relay/cairn-relay.conf is not a link to the conffile"
[ "$(stat -c '%U %G %a' /etc/cairn-relay/cairn-relay.conf)" = "root $RELAY_USER 640" ] ||
	fail "the conffile is $(stat -c '%U %G %a' /etc/cairn-relay/cairn-relay.conf)"
dpkg-query -W -f='${Conffiles}\n' cairn-relay | grep -q ' /etc/cairn-relay/cairn-relay.conf ' ||
	fail "/etc/cairn-relay/cairn-relay.conf is not a conffile"
grep -q '^#ttl = 21d$' /etc/cairn-relay/cairn-relay.conf || fail "the conffile is not the default"
! grep -q '^#path = .' /etc/cairn-relay/cairn-relay.conf || fail "the conffile carries a path"
[ -f /lib/systemd/system/cairn-relay.service ] || fail "no systemd unit"
unit=/lib/systemd/system/cairn-relay.service
{ grep -q "^User=$RELAY_USER\$" $unit && ! grep -q '^DynamicUser' $unit; } || fail "unit's user"
grep -q '^ExecStart=/usr/bin/cairn-relay run --data /var/lib/cairn-relay --config /etc/cairn-relay/cairn-relay.conf$' \
	$unit || fail "unit's ExecStart: $(grep ExecStart= $unit)"
for page in 1:cairn 8:cairn-relay 5:cairn-relay.conf; do
	man -w "${page%%:*}" "${page#*:}" >/dev/null || fail "no man page ${page#*:}(${page%%:*})"
done
addr=$(/usr/bin/cairn-relay address --data /var/lib/cairn-relay) || fail "address"
case $addr in cairn://*@127.0.0.1:7443) ;; *) fail "the installed relay's address: $addr" ;; esac
# Installed again (as an upgrade would): the key stays, and so does an edit of the conffile.
key_sum=$(sha256sum /var/lib/cairn-relay/relay.key)
echo "# an operator's edit" >>/etc/cairn-relay/cairn-relay.conf
dpkg -i "$scratch/out/cairn-relay_"*.deb >"$scratch/reinstall.log" 2>&1 ||
	{ cat "$scratch/reinstall.log" >&2; fail "dpkg -i again failed"; }
[ "$(sha256sum /var/lib/cairn-relay/relay.key)" = "$key_sum" ] || fail "reinstall changed the key"
grep -q "^# an operator's edit$" /etc/cairn-relay/cairn-relay.conf ||
	fail "reinstall lost the operator's edit of the conffile"
[ "$(stat -c '%U %G %a' /etc/cairn-relay/cairn-relay.conf)" = "root $RELAY_USER 640" ] ||
	fail "after reinstall the conffile is $(stat -c '%U %G %a' /etc/cairn-relay/cairn-relay.conf)"
# libcairn-dev: a program built with pkg-config alone loads the installed libcairn.so.0.
printf '#include <cairn/cairn.h>\n#include <stdio.h>\nint main(void)\n{\n\tputs(cairn_strerror(CAIRN_ENOTFOUND));\n\treturn 0;\n}\n' >"$scratch/app.c"
# shellcheck disable=SC2046 # pkg-config's output is meant to be split
cc -std=c11 -Wall -Werror -o "$scratch/app" "$scratch/app.c" $(pkg-config --cflags --libs cairn) ||
	fail "a program using pkg-config cairn does not build"
ldd "$scratch/app" | grep -q 'libcairn.so.0 => /\(usr/\)\{0,1\}lib/[^ ]*/libcairn.so.0 ' ||
	fail "app does not load the installed libcairn.so.0: $(ldd "$scratch/app")"
"$scratch/app" >/dev/null || fail "the installed library does not work"

# 5. README.md, "Two people, one relay", with the installed binaries. The relay runs as the
# system user from a scratch data directory (the packaged one stays untouched), started with
# setpriv (no systemd here), on a free port of 127.0.0.1.
chmod 0711 "$scratch"
data=$scratch/relay-data
mkdir -m 0700 "$data"
chown "$RELAY_USER:$RELAY_USER" "$data"
setpriv --reuid="$RELAY_USER" --regid="$RELAY_USER" --init-groups \
	/usr/bin/cairn-relay init --data "$data" >/dev/null 2>"$scratch/init.log" ||
	{ cat "$scratch/init.log" >&2; fail "cairn-relay init as $RELAY_USER"; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
setpriv --reuid="$RELAY_USER" --regid="$RELAY_USER" --init-groups \
	/usr/bin/cairn-relay run --data "$data" --listen "127.0.0.1:$port" 2>"$scratch/relay.log" &
relay_pid=$!
python3 - "$port" "$relay_pid" <<'PY' || { cat "$scratch/relay.log" >&2; fail "the relay did not start"; }
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        if not os.path.exists("/proc/%d" % pid):
            sys.exit(1)
        time.sleep(0.1)
sys.exit(1)
PY
[ "$(stat -c %U "/proc/$relay_pid")" = "$RELAY_USER" ] || fail "the relay does not run as $RELAY_USER"

export CAIRN_PASSPHRASE="it deb passphrase" CAIRN_PWHASH_FAST=1
cd "$scratch"
RELAY=$(/usr/bin/cairn-relay address --data "$data" --listen "127.0.0.1:$port")
cairn=/usr/bin/cairn
$cairn --home A init >/dev/null || fail "cairn --home A init"
invite=$($cairn --home A invite --relay "$RELAY" --name bob) || fail "invite"
case $invite in cairn-invite:*) ;; *) fail "invite printed: $invite" ;; esac
$cairn --home B init >/dev/null || fail "cairn --home B init"
$cairn --home B accept "$invite" --name alice >/dev/null || fail "accept"
$cairn --home B send alice "text from the installed cairn" || fail "send"
$cairn --home A sync >/dev/null || fail "sync"
$cairn --home A read bob | grep -q 'text from the installed cairn' || fail "read bob"
$cairn --home A listen >"$scratch/listen.out" 2>&1 &
listen_pid=$!
$cairn --home B send alice "while A listens" || fail "send while A listens"
i=0
until grep -q 'while A listens' "$scratch/listen.out"; do
	i=$((i + 1))
	[ $i -lt 600 ] || { cat "$scratch/listen.out" >&2; fail "listen did not print the message"; }
	sleep 0.1
done
kill "$listen_pid"
wait "$listen_pid" 2>/dev/null || true
listen_pid=""
$cairn --home A contacts | grep -q bob || fail "contacts"
na=$($cairn --home A verify bob | grep -o '[0-9][0-9 ]*[0-9]' | tr -d ' \n')
nb=$($cairn --home B verify alice | grep -o '[0-9][0-9 ]*[0-9]' | tr -d ' \n')
{ [ -n "$na" ] && [ "$na" = "$nb" ]; } || fail "safety numbers differ: '$na' and '$nb'"
$cairn --home A rename bob robert >/dev/null || fail "rename"
$cairn --home A read robert | grep -q 'while A listens' || fail "read robert"
kill "$relay_pid"
wait "$relay_pid" || fail "the relay did not stop cleanly on SIGTERM"
relay_pid=""
t3=$(date +%s)

# 6. Purge: nothing of the packages is left.
# shellcheck disable=SC2086 # a list of package names
dpkg --purge $PKGS >"$scratch/purge.log" 2>&1 || { cat "$scratch/purge.log" >&2; fail "purge"; }
for p in /var/lib/cairn-relay /etc/cairn-relay /usr/bin/cairn-relay /usr/bin/cairn; do
	[ ! -e "$p" ] || fail "$p is still there after the purge"
done
! dpkg-statoverride --list /etc/cairn-relay/cairn-relay.conf >/dev/null ||
	fail "the conffile's statoverride is left after the purge"
say "ok: build $((t1 - t0)) s, lint+install $((t2 - t1)) s, checks and walk-through" \
	"$((t3 - t2)) s, total $(($(date +%s) - t0)) s"
