#!/bin/sh
# SPDX-License-Identifier: MIT
# test_man_pages: the man pages cannot drift from the code. cairn-relay.conf(5)
# (docs/man/cairn-relay.conf.5.scd) documents exactly the keys of relay/config_keys.c, each
# under its own section (a "## [section]" heading and a "*key*" line); cairn-relay(8) and
# cairn(1) have an entry ("*command ...") for every command of `cairn-relay --help`
# (relay/main.c's usage_main) and `cairn --help` (client/cli.c's usage_text).
# Usage: man_pages.sh SOURCE_DIR CAIRN_RELAY (the built relay, whose init writes every key)
set -eu
src=${1:?usage: man_pages.sh SOURCE_DIR CAIRN_RELAY}
relay=${2:?usage: man_pages.sh SOURCE_DIR CAIRN_RELAY}
table=$src/relay/config_keys.c
page=$src/docs/man/cairn-relay.conf.5.scd
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The keys as the relay knows them: the default file `cairn-relay init` writes from the
# table (every key, "#key =" under its "[section]"), whatever macros the table uses.
"$relay" init --data "$tmp/data" >/dev/null 2>"$tmp/init.log" ||
	{ cat "$tmp/init.log" >&2; echo "man_pages: $relay init failed" >&2; exit 1; }
awk '/^\[[a-z0-9_]+\]$/ { sec = $0; gsub(/[][]/, "", sec); next }
     /^#[a-z0-9_]+ =/ { k = $1; sub(/^#/, "", k); print sec, k }' \
	"$tmp/data/cairn-relay.conf" | sort -u >"$tmp/code"
sections=$(cut -d' ' -f1 "$tmp/code" | sort -u)
[ -s "$tmp/code" ] || { echo "man_pages: no keys found in $table" >&2; exit 1; }

# The page's keys: "*key*" lines (scdoc escapes _ as \_) under "## [section]".
awk '/^## \[/ { sec = $2; gsub(/[][]/, "", sec); next }
     /^#/ { sec = ""; next }
     sec != "" && /^\*[a-z0-9_\\]+\*$/ { k = $0; gsub(/[*\\]/, "", k); print sec, k }' \
	"$page" | sort -u >"$tmp/page"

if ! cmp -s "$tmp/code" "$tmp/page"; then
	echo "man_pages: relay/config_keys.c and docs/man/cairn-relay.conf.5.scd differ" >&2
	echo "(< only in config_keys.c: add it to the man page; > only in the page):" >&2
	diff "$tmp/code" "$tmp/page" | grep '^[<>]' >&2
	exit 1
fi
# Commands: the usage text's lines "  word [word]... " at the left margin (options, variables
# and continuation lines do not start with a lower-case word there).
missing=0
for pair in relay/main.c:docs/man/cairn-relay.8.scd client/cli.c:docs/man/cairn.1.scd; do
	code=$src/${pair%%:*}
	man=$src/${pair#*:}
	grep -oE '^ *"  [a-z]+( [a-z]+)*[ \\]' "$code" | sed -E 's/^ *"  //; s/.$//' | sort -u \
		>"$tmp/cmds"
	[ -s "$tmp/cmds" ] || { echo "man_pages: no commands found in $code" >&2; exit 1; }
	while IFS= read -r cmd; do
		if ! grep -qE "^\*$cmd( |\*)" "$man"; then
			echo "man_pages: '$cmd' (${pair%%:*}) has no entry in ${pair#*:}" >&2
			missing=1
		fi
	done <"$tmp/cmds"
	echo "man_pages: ${pair#*:}: $(wc -l <"$tmp/cmds") commands, all documented"
done
[ "$missing" = 0 ] || exit 1
echo "man_pages: $(wc -l <"$tmp/code") keys in $(echo "$sections" | wc -w) sections, all documented"
