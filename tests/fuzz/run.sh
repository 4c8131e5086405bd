#!/bin/sh
# tests/fuzz/run.sh [SECONDS] — build every tests/fuzz/fuzz_*.c with clang's
# libFuzzer (+ ASan + UBSan) and run each for SECONDS (default 60) on a copy
# of its seed corpus tests/fuzz/corpus/<name>/ (name = file name minus
# "fuzz_"). Exits non-zero if a target fails to build or finds a crash;
# prints "skipped: clang/libFuzzer not found" and exits 0 without clang.
#
# The targets are built straight from the sources (no configure needed):
# all of gwb/*.c, compiler/*.c except compiler/gwc.c (gwc's main), and
# grammar/lexer.re run through re2c into a temporary directory, with a
# minimal config.h generated there. Each target is built on its own, so
# one that does not build does not stop the others from running.
# fuzz_waf links the WAF engine instead, fuzz_door gwd's head check.
set -u

SECS=${1:-60}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CC=${FUZZ_CC:-clang}
RE2C=${RE2C:-re2c}

say() { printf 'fuzz: %s\n' "$*"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gw-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

# clang with libFuzzer?
if ! command -v "$CC" >/dev/null 2>&1; then
	echo "skipped: clang/libFuzzer not found"
	exit 0
fi
cat > "$tmp/probe.c" <<'EOF'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }
EOF
if ! "$CC" -fsanitize=fuzzer "$tmp/probe.c" -o "$tmp/probe" >/dev/null 2>&1; then
	echo "skipped: clang/libFuzzer not found"
	exit 0
fi

# a minimal config.h: what AC_USE_SYSTEM_EXTENSIONS and AC_INIT give
cat > "$tmp/config.h" <<'EOF'
#ifndef _GNU_SOURCE
# define _GNU_SOURCE 1
#endif
#define PACKAGE "gw"
#define PACKAGE_NAME "gw"
#define PACKAGE_VERSION "fuzz"
#define PACKAGE_STRING "gw fuzz"
#define VERSION "fuzz"
EOF

mkdir -p "$tmp/grammar"
lexer=
if [ -f "$ROOT/grammar/lexer.re" ]; then
	if command -v "$RE2C" >/dev/null 2>&1 &&
	   "$RE2C" -W --no-generation-date --no-version -o "$tmp/grammar/lexer.c" \
	           "$ROOT/grammar/lexer.re" 2> "$tmp/re2c.log"; then
		lexer="$tmp/grammar/lexer.c"
	else
		say "re2c failed on grammar/lexer.re (targets that need the lexer will not link):"
		cat "$tmp/re2c.log" >&2
	fi
fi

srcs=
for f in "$ROOT"/gwb/*.c "$ROOT"/compiler/*.c; do
	[ -f "$f" ] || continue
	[ "$f" = "$ROOT/compiler/gwc.c" ] && continue
	srcs="$srcs $f"
done
[ -n "$lexer" ] && srcs="$srcs $lexer"

CFLAGS="-g -O1 -std=c11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
	-fno-omit-frame-pointer -I$tmp -I$tmp/grammar -I$ROOT -I$ROOT/gwb -I$ROOT/compiler -I$ROOT/grammar
	$(pkg-config --cflags libpcre2-8 yaml-0.1 libcrypto 2>/dev/null)"
LIBS="$(pkg-config --libs libpcre2-8 yaml-0.1 libcrypto 2>/dev/null || echo -lpcre2-8 -lyaml -lcrypto) -lm -lpthread"

status=0
built=
failed_build=
for t in "$ROOT"/tests/fuzz/fuzz_*.c; do
	[ -f "$t" ] || continue
	name=$(basename "$t" .c)
	name=${name#fuzz_}
	say "building fuzz_$name"
	# objects are built per target: a broken compiler file only breaks
	# the targets that link it. fuzz_waf links the WAF engine
	# (runtime/plugins/waf_*.c minus the gwd plugin) instead.
	tsrcs=$srcs
	if [ "$name" = waf ]; then
		tsrcs=
		for f in "$ROOT"/runtime/plugins/waf_*.c; do
			[ "$f" = "$ROOT/runtime/plugins/waf_plugin.c" ] || tsrcs="$tsrcs $f"
		done
	fi
	# fuzz_door: gwd's check of a connection's first head, alone
	[ "$name" = door ] && tsrcs="$ROOT/runtime/door_check.c $ROOT/runtime/respond.c"
	if $CC $CFLAGS -I"$ROOT/runtime/plugins" -I"$ROOT/runtime" -o "$tmp/fuzz_$name" "$t" $tsrcs $LIBS > "$tmp/build_$name.log" 2>&1; then
		built="$built $name"
	else
		failed_build="$failed_build $name"
		say "fuzz_$name: build FAILED:"
		tail -n 30 "$tmp/build_$name.log" >&2
		status=1
	fi
done

for name in $built; do
	corpus="$tmp/corpus_$name"
	mkdir -p "$corpus"
	if [ -d "$ROOT/tests/fuzz/corpus/$name" ]; then
		cp -R "$ROOT/tests/fuzz/corpus/$name/." "$corpus/"
	fi
	say "running fuzz_$name for ${SECS}s on $(ls "$corpus" | wc -l) seeds"
	if (cd "$tmp" && ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
	    "./fuzz_$name" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 "$corpus" > "$tmp/run_$name.log" 2>&1); then
		say "fuzz_$name: ok ($(grep -m1 'stat::number_of_executed_units' "$tmp/run_$name.log" | awk '{print $2}') runs)"
	else
		say "fuzz_$name: CRASH (last lines of its log follow; the crashing input is printed as base64 above them)"
		tail -n 60 "$tmp/run_$name.log" >&2
		# keep the reproducer where a developer can find it
		for c in "$tmp"/crash-* "$tmp"/leak-* "$tmp"/timeout-* "$tmp"/oom-*; do
			[ -f "$c" ] && cp "$c" "${TMPDIR:-/tmp}/fuzz_$name-$(basename "$c")" &&
				say "reproducer: ${TMPDIR:-/tmp}/fuzz_$name-$(basename "$c")"
		done
		status=1
	fi
done

[ -n "$failed_build" ] && say "failed to build:$failed_build"
[ $status -eq 0 ] && say "all targets ok:$built"
exit $status
