#!/bin/sh
# Golden disassembly: compile every example of tests/golden/examples.list
# and compare `gwc dump` of the table with tests/golden/NAME.dump.
#
# Output must not depend on where the tree or the build is: each example is
# compiled from inside its own directory with relative paths (the source
# hash covers the paths as named) and dumped from inside a scratch
# directory. Files named by the rules (keys=file(...)) are carried as
# absolute paths, so the source tree's location is replaced by "@top@",
# and the first line's file size and checksum (which depend on those
# paths' lengths and bytes) by "@size@" / "@checksum@".
#
#   tests/unit/test_golden.sh            (from the build dir; make check runs it)
#   tests/unit/test_golden.sh --update   rewrite the .dump files (see tests/golden/update.sh)
#
# GWC=path/to/gwc overrides where gwc is looked for (./gwc, ./compiler/gwc).
set -u

update=0
[ "${1:-}" = "--update" ] && update=1

top=$(cd "${srcdir:-.}" && pwd -P)
builddir=$(pwd)
gwc=${GWC:-}
if [ -z "$gwc" ]; then
	for c in "$builddir/gwc" "$builddir/compiler/gwc"; do
		[ -x "$c" ] && gwc=$c && break
	done
fi
case $gwc in
	/*) ;;
	"") echo "test_golden: gwc not found (build it, or set GWC)" >&2; exit 99 ;;
	*) gwc=$builddir/$gwc ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gw-golden.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM

fail=0
n=0
while read -r name dir root cases; do
	case $name in ''|'#'*) continue ;; esac
	n=$((n + 1))
	if ! (cd "$top/$dir" && "$gwc" compile "$root" -o "$tmp/$name.gwb") 2>"$tmp/$name.err"; then
		echo "FAIL: $name: gwc compile $dir/$root:" >&2
		cat "$tmp/$name.err" >&2
		fail=1
		continue
	fi
	if ! (cd "$tmp" && "$gwc" dump "$name.gwb") >"$tmp/$name.raw" 2>"$tmp/$name.err"; then
		echo "FAIL: $name: gwc dump:" >&2
		cat "$tmp/$name.err" >&2
		fail=1
		continue
	fi
	# "|" cannot occur in $top: the checkout would not be usable by make
	sed -e "s|$top/|@top@/|g" \
	    -e '1s/[0-9][0-9]* bytes/@size@ bytes/' \
	    -e '1s/checksum [0-9a-f][0-9a-f]*/checksum @checksum@/' \
	    "$tmp/$name.raw" >"$tmp/$name.dump"
	if [ "$update" = 1 ]; then
		cp "$tmp/$name.dump" "$top/tests/golden/$name.dump"
		echo "updated tests/golden/$name.dump"
	elif ! diff -u "$top/tests/golden/$name.dump" "$tmp/$name.dump" >"$tmp/$name.diff"; then
		echo "FAIL: $name: gwc dump differs from tests/golden/$name.dump" \
		     "(if the change is intended: tests/golden/update.sh):" >&2
		cat "$tmp/$name.diff" >&2
		fail=1
	else
		echo "ok: $name"
	fi
done <"$top/tests/golden/examples.list"

[ "$n" -gt 0 ] || { echo "test_golden: no examples listed" >&2; exit 99; }
exit $fail
