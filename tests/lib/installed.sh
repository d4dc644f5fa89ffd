#!/bin/sh
# SPDX-License-Identifier: MIT
# libcairn as an application sees it: installs the build into a scratch prefix, then checks
# that the shared library carries the soname libcairn.so.0, exports exactly the functions
# include/cairn/ declares (client/libcairn.map must follow the headers), and that a program
# built with nothing but `pkg-config cairn` links against it and works (a new home, opened,
# listed and closed).
# Usage: installed.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
lib=$(find "$tmp/prefix" -name 'libcairn.so.0' | head -n 1)
[ -n "$lib" ] || fail "no libcairn.so.0 installed"
libdir=$(dirname "$lib")
[ -L "$libdir/libcairn.so" ] || fail "no libcairn.so development link"
readelf -d "$lib" | grep -q 'SONAME.*\[libcairn\.so\.0\]' || fail "soname is not libcairn.so.0"

# Exported functions against the headers' declarations.
nm -D --defined-only "$lib" | awk '$2 == "T" {sub(/@.*/, "", $3); print $3}' | sort >"$tmp/exported"
cat "$src"/include/cairn/*.h | grep -o '\bcairn_[a-z0-9_]*[[:space:]]*(' | tr -d ' (' |
	grep -v '_cb$' | sort -u >"$tmp/declared"
if ! cmp -s "$tmp/exported" "$tmp/declared"; then
	echo "exported (<) vs declared (>):" >&2
	diff "$tmp/exported" "$tmp/declared" >&2 || true
	fail "the shared library's exports differ from include/cairn/"
fi

cat >"$tmp/app.c" <<'APP'
#include <stdio.h>
#include <string.h>
#include <cairn/cairn.h>

static int count(void *ctx, const struct cairn_contact *k)
{
	(void)k;
	++*(int *)ctx;
	return 0;
}

int main(int argc, char **argv)
{
	struct cairn *c = NULL;
	int n = 0;
	if (argc != 2 || cairn_init(argv[1], "installed test") != 0 ||
	    cairn_open(argv[1], "wrong", &c) != CAIRN_EPASSPHRASE ||
	    cairn_open(argv[1], "installed test", &c) != 0 || cairn_contacts(c, count, &n) != 0)
		return 1;
	cairn_close(c);
	printf("%d contacts; %s\n", n, cairn_strerror(CAIRN_ENOTFOUND));
	return 0;
}
APP
# The build was configured for another prefix: pkg-config finds it from where the file is.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046 # pkg-config's output is meant to be split
${CC:-cc} -std=c11 -Wall -Werror $(pkg-config --define-prefix --cflags cairn) -o "$tmp/app" "$tmp/app.c" \
	$(pkg-config --define-prefix --libs cairn) || fail "a program using pkg-config cairn does not build"
readelf -d "$tmp/app" | grep -q 'NEEDED.*\[libcairn\.so\.0\]' || fail "app not linked to libcairn.so.0"
out=$(CAIRN_PWHASH_FAST=1 LD_LIBRARY_PATH="$libdir" "$tmp/app" "$tmp/home") ||
	fail "the installed library does not work"
case $out in "0 contacts; "?*) ;; *) fail "the app printed: $out" ;; esac
echo "ok: $lib, $(wc -l <"$tmp/exported") functions, pkg-config $(pkg-config --modversion cairn)"
