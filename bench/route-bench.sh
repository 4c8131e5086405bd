#!/bin/sh
# Route-matching and compile benchmark. Run from the top of the source tree
# after the build:
#
#   bench/route-bench.sh                 # 1k, 10k and 100k routes
#   bench/route-bench.sh 5000 50000      # other sizes
#   BUILD_DIR=/path/to/build bench/route-bench.sh   # out-of-tree build
#
# The last lines are machine-readable, one figure per line (compile_s_100k=,
# match_ns_10k=, match_ns_100k=, naive_ns_10k=, bytes_per_route_10k=).
# Builds nothing except, when missing, the benchmark program itself.
set -eu
build=${BUILD_DIR:-.}
prog=$build/bench/route-bench
if [ ! -x "$prog" ]; then
	if [ -f "$build/Makefile" ]; then
		make -C "$build" bench/route-bench >&2
	else
		echo "route-bench.sh: $prog not found; build first (or set BUILD_DIR)" >&2
		exit 2
	fi
fi
exec "$prog" "$@"
