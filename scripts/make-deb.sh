#!/bin/sh
# SPDX-License-Identifier: MIT
# `make deb`: builds the Debian packages (cairn-relay, cairn, libcairn0, libcairn-dev) from
# this tree. Copies the source (git's tracked and untracked, not ignored, files; without git,
# the working tree without build directories) into a scratch directory, puts contrib/debian
# there as debian/, runs dpkg-buildpackage -us -uc -b without tests, and leaves the .deb,
# .changes and .buildinfo files in OUTDIR (default build-deb/, emptied first).
# Usage: make-deb.sh [OUTDIR]. JOBS sets the build's parallelism; CAIRN_DEB_KEEP=1 keeps the
# scratch directory.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$src/build-deb}
jobs=${JOBS:-2}

version=$(sed -n '1s/^cairn (\([^)]*\)).*/\1/p' "$src/contrib/debian/changelog")
project=$(sed -n 's/^project(cairn VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
if [ "${version%%-*}" != "$project" ]; then
	echo "make-deb: contrib/debian/changelog is at $version but CMakeLists.txt at $project:" \
		"add a changelog entry (dch -v $project)" >&2
	exit 1
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/cairn-deb.XXXXXX")
[ "${CAIRN_DEB_KEEP:-0}" = 1 ] || trap 'rm -rf "$scratch"' EXIT
tree=$scratch/cairn-$version
mkdir "$tree"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$src" && git ls-files --cached --others --exclude-standard |
		while IFS= read -r f; do [ -e "$f" ] && printf '%s\n' "$f"; done |
		tar -cf - --no-recursion -T -) | tar -xf - -C "$tree"
else
	(cd "$src" && tar -cf - --exclude='./build*' --exclude=./cairn-data --exclude=./.git .) |
		tar -xf - -C "$tree"
fi
rm -rf "$tree/debian"
cp -R "$src/contrib/debian" "$tree/debian"

echo "make-deb: building cairn $version in $tree"
(cd "$tree" && DEB_BUILD_OPTIONS="nocheck parallel=$jobs ${DEB_BUILD_OPTIONS:-}" \
	dpkg-buildpackage -us -uc -b)

mkdir -p "$out"
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mv "$scratch"/*.deb "$scratch"/*.changes "$scratch"/*.buildinfo "$out"/
echo "make-deb: packages in $out:"
ls -1 "$out"
