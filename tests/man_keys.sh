#!/bin/sh
# SPDX-License-Identifier: MIT
# test_man_keys: cairn-relay.conf(5) (docs/man/cairn-relay.conf.5.scd) documents exactly the
# keys of relay/config_keys.c, each under its own section (a "## [section]" heading and a
# "*key*" line), so the page and the parser cannot drift apart.
# Usage: man_keys.sh SOURCE_DIR
set -eu
src=${1:?usage: man_keys.sh SOURCE_DIR}
table=$src/relay/config_keys.c
page=$src/docs/man/cairn-relay.conf.5.scd
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The sections, from `sections[] = {"relay", ...};`, then every `"section", "key"` pair of the
# table (any macro) outside that line.
sections=$(grep 'sections\[\] *=' "$table" | grep -o '"[a-z0-9_]*"' | tr -d '"')
[ -n "$sections" ] || { echo "man_keys: no sections[] in $table" >&2; exit 1; }
grep -v 'sections\[\] *=' "$table" |
	grep -oE '"[a-z0-9_]+", *"[a-z0-9_]+"' | tr -d '" ' | tr ',' ' ' |
	while read -r sec key; do
		for s in $sections; do
			[ "$s" = "$sec" ] && echo "$sec $key"
		done
	done | sort -u >"$tmp/code"
[ -s "$tmp/code" ] || { echo "man_keys: no keys found in $table" >&2; exit 1; }

# The page's keys: "*key*" lines (scdoc escapes _ as \_) under "## [section]".
awk '/^## \[/ { sec = $2; gsub(/[][]/, "", sec); next }
     /^#/ { sec = ""; next }
     sec != "" && /^\*[a-z0-9_\\]+\*$/ { k = $0; gsub(/[*\\]/, "", k); print sec, k }' \
	"$page" | sort -u >"$tmp/page"

if ! cmp -s "$tmp/code" "$tmp/page"; then
	echo "man_keys: relay/config_keys.c and docs/man/cairn-relay.conf.5.scd differ" >&2
	echo "(< only in config_keys.c: add it to the man page; > only in the page):" >&2
	diff "$tmp/code" "$tmp/page" | grep '^[<>]' >&2
	exit 1
fi
echo "man_keys: $(wc -l <"$tmp/code") keys in $(echo "$sections" | wc -w) sections, all documented"
