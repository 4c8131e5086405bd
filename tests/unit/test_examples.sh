#!/bin/sh
# Every example rule set of tests/golden/examples.list must pass
# `gwc check --strict` (no warnings) and its own `gwc test ... CASES.yaml`,
# and every .gwr file of those examples must already be canonically
# formatted (`gwc fmt --check`).
#
# GWC=path/to/gwc overrides where gwc is looked for (./gwc, ./compiler/gwc).
set -u

top=$(cd "${srcdir:-.}" && pwd)
builddir=$(pwd)
gwc=${GWC:-}
if [ -z "$gwc" ]; then
	for c in "$builddir/gwc" "$builddir/compiler/gwc"; do
		[ -x "$c" ] && gwc=$c && break
	done
fi
case $gwc in
	/*) ;;
	"") echo "test_examples: gwc not found (build it, or set GWC)" >&2; exit 99 ;;
	*) gwc=$builddir/$gwc ;;
esac

fail=0
n=0
run() {
	# run CMD...: print it, and its output only when it fails
	out=$("$@" 2>&1)
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "FAIL (exit $rc): $*" >&2
		printf '%s\n' "$out" >&2
		fail=1
	else
		echo "ok: $*"
	fi
}

while read -r name dir root cases; do
	case $name in ''|'#'*) continue ;; esac
	n=$((n + 1))
	run "$gwc" check --strict "$top/$dir/$root"
	run "$gwc" test "$top/$dir/$root" "$top/$dir/$cases"
	# the .gwr files of this example: the root, plus its folder's tree
	# when the example has a folder of its own
	if [ "$dir" = examples ]; then
		files=$top/$dir/$root
	else
		files=$(find "$top/$dir" -name '*.gwr' | sort)
	fi
	for f in $files; do
		run "$gwc" fmt --check "$f"
	done
done <"$top/tests/golden/examples.list"

[ "$n" -gt 0 ] || { echo "test_examples: no examples listed" >&2; exit 99; }
exit $fail
