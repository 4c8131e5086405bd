#!/bin/bash
# The whole test suite (the README's second command), from a configured and
# built tree:
#   1. make check            unit + integration tests (real gwd, real origins)
#   2. ASan+UBSan build      the same suite built with sanitizers, out of tree
#   3. fuzzers               each libFuzzer target for GW_FUZZ_SECONDS (60)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
[ -f Makefile ] || { [ -x configure ] || ./autogen.sh; ./configure; }
jobs=$(nproc)
passed=0 failed=0
# add a make check run's totals (automake's test-suite.log header) and, on
# failure, print the closing line before leaving
tally() {
	local log=$1 p f
	p=$(sed -n 's/^# PASS: *//p' "$log" 2>/dev/null | head -1)
	f=$(sed -n 's/^# FAIL: *//p' "$log" 2>/dev/null | head -1)
	e=$(sed -n 's/^# ERROR: *//p' "$log" 2>/dev/null | head -1)
	passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${e:-0}))
}
closing() { echo "tests: $passed passed, $failed failed"; }

echo "== make check"
# on failure: test-suite.log holds the logs of the failing tests only
make -j"$jobs" check || { tail -300 test-suite.log 2>/dev/null; tally test-suite.log; failed=$((failed ? failed : 1)); closing; exit 1; }
tally test-suite.log

if [ "${GW_SKIP_SAN:-0}" != 1 ]; then
	echo "== ASan+UBSan build + make check"
	# automake refuses a second, out-of-tree build of a configured source
	# tree, so the sanitizer build gets its own copy of the sources.
	san="$top/build-san"
	mkdir -p "$san"
	git ls-files -co --exclude-standard | grep -v '^build-san/' | tar -cf - -T - | tar -xf - -C "$san"
	( cd "$san" && { [ -x configure ] || ./autogen.sh >/dev/null; } &&
	  { [ -f Makefile ] || ./configure -q --enable-sanitizers CC="${SAN_CC:-gcc}"; } )
	export CK_TIMEOUT_MULTIPLIER=3  # sanitizers slow everything down
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=suppressions=$top/tests/lsan.supp:print_suppressions=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	make -C "$san" -j"$jobs" check || { tail -300 "$san/test-suite.log" 2>/dev/null; tally "$san/test-suite.log"; failed=$((failed ? failed : 1)); closing; exit 1; }
	tally "$san/test-suite.log"
fi

if [ "${GW_SKIP_FUZZ:-0}" != 1 ]; then
	echo "== fuzzers"
	nf=$(ls "$top"/tests/fuzz/fuzz_*.c | wc -l)
	if "$top/tests/fuzz/run.sh" "${GW_FUZZ_SECONDS:-60}"; then
		passed=$((passed + nf))
	else
		failed=$((failed + 1)); closing; exit 1
	fi
fi
echo "== all tests passed"
closing
