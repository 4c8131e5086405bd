#!/usr/bin/env bash
# plugins-bench.sh — what the access plugins cost (issue 4's benchmark).
# Run from the repository root after the build:
#
#   bench/plugins-bench.sh
#   GW_BUILDDIR=/tmp/b BENCH_ARGS="-d 5 -r 3" bench/plugins-bench.sh
#
# Proxy throughput through the shared harness (/work/shared/bench/
# proxy-bench.sh, peers nginx and openresty), four invocations in the order
# A B B A, gwd being the candidate:
#   A  gwd with auth key (X-API-Key, the key every harness request carries)
#      + rate_limit (1,000,000 r/s: never limiting) + waf sqli xss traversal
#      on the route — the same gateway work as the openresty peer's Lua
#      access phase, plus the WAF;
#   B  the same gwd and route without plugins.
# Each invocation has its own nginx baseline; the figures are medians of
# per-round ratios taken inside one invocation (rounds of both invocations
# of a configuration pooled), so machine speed drifting between invocations
# cancels out:
#   plugin_overhead_pct  1 - (A/nginx) / (B/nginx), in %   (target <= 15)
#   ratio_vs_openresty   A / openresty, same rounds         (target >= 1.5)
# plus cpu_us/r (proxy CPU per request) of A and B, a steadier view of the
# same cost when other processes load the machine (req/s then swings by
# 2x between rounds; CPU per request by a few %):
#   plugin_overhead_cpu_pct  cpu(A) / cpu(B) - 1, in %
#   cpu_ratio_vs_openresty   cpu(openresty) / cpu(A): > 1 means gwd is cheaper
# The WAF engine on its own: waf_mb_s from bench/waf-bench (MB/s of
# inspected query strings on one core, clean traffic), and the detection /
# false-positive rates of the labelled corpus (tests/unit/test_waf_corpus).
#
# Environment:
#   GW_BUILDDIR    where gwd, gwc, bench/waf-bench and tests/unit/
#                  test_waf_corpus are (default: ., then ./build)
#   PROXY_BENCH    the harness (default /work/shared/bench/proxy-bench.sh)
#   GWD_THREADS    gwd worker threads (default auto = cores)
#   BENCH_ARGS     harness flags per invocation (default "-d 5 -r 2"; e.g.
#                  "--pin -d 5 -r 3")
#   BASE_PORT      the harness's ports: origin BASE_PORT, peers +1..+3, gwd +10
#                  (default 18080; pick another while someone else benchmarks)
#   SKIP_PROXY=1   only the WAF figures
#
# The last lines are machine-readable, one figure per line.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

. "$here/lib.sh"

# dir listen_port origin_port plugins|plain
write_gw() {
	local d=$1 lp=$2 op=$3 mode=$4 access=""
	mkdir -p "$d"
	if [ "$mode" = plugins ]; then
		printf 'tenant-1:bench-key-1\n' > "$d/keys.txt"
		access='    auth key header="X-API-Key" keys=file("keys.txt");
    rate_limit 1000000r/s burst=1000000 key=client_ip;
    waf sqli xss traversal;'
	fi
	bench_table "$d" "$op" "$access"
	cat > "$d/gateway.yaml" <<EOF
listen: 127.0.0.1:$lp
rules: bench.gwb
threads: ${GWD_THREADS:-auto}
admin: {listen: 'off'}
access_log: {path: 'off'}
error_log: {level: warn}
limits: {max_connections: 20000}
EOF
}

if [ "${1:-}" = "--candidate" ]; then
	: "${ORIGIN_PORT:?}" "${CANDIDATE_PORT:?}" "${BENCH_DIR:?}"
	B=$(bench_find_build plugins-bench)
	write_gw "$BENCH_DIR" "$CANDIDATE_PORT" "$ORIGIN_PORT" "${2:?plugins or plain}"
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	exec "$B/gwd" -c "$BENCH_DIR/gateway.yaml"
fi

B=$(bench_find_build plugins-bench)
export GW_BUILDDIR=$B
HARNESS=${PROXY_BENCH:-/work/shared/bench/proxy-bench.sh}
work=$(mktemp -d /tmp/plugins-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The harness's per-round TSV: round target rps p50 p99 non2xx sockerr
# requests cpu_us_per_req other wrk. Several invocations pool their rounds.
# median over rounds of num's rps / den's rps (same round, same invocation)
ratio() {   # num den tsv...
	local a=$1 b=$2
	shift 2
	awk -F'\t' -v a="$a" -v b="$b" '
		FNR > 1 { rps[FILENAME "/" $1 "/" $2] = $3; rounds[FILENAME "/" $1] = 1 }
		END {
			n = 0
			for (r in rounds)
				if ((r "/" a) in rps && (r "/" b) in rps && rps[r "/" b] > 0)
					v[n++] = rps[r "/" a] / rps[r "/" b]
			if (!n) { print "n/a"; exit }
			for (i = 0; i < n; i++) for (j = i + 1; j < n; j++)
				if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
			printf "%.3f\n", n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
		}' "$@"
}
# median over rounds of one column of a target: rps is 3, cpu_us_per_req 9
median() {   # target field tsv...
	local t=$1 f=$2
	shift 2
	awk -F'\t' -v t="$t" -v f="$f" '
		FNR > 1 && $2 == t { v[n++] = $f }
		END {
			if (!n) { print "n/a"; exit }
			for (i = 0; i < n; i++) for (j = i + 1; j < n; j++)
				if (v[j] + 0 < v[i] + 0) { x = v[i]; v[i] = v[j]; v[j] = x }
			printf "%.1f\n", n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
		}' "$@"
}

OVERHEAD=n/a VS_OPENRESTY=n/a OVERHEAD_CPU=n/a CPU_VS_OPENRESTY=n/a
if [ -z "${SKIP_PROXY:-}" ]; then
	if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
		setup=$(dirname "$HARNESS")/setup.sh
		if [ "$(id -u)" = 0 ]; then
			"$setup" >&2
		else
			echo "plugins-bench: nginx/wrk missing: run $setup as root" >&2
			exit 1
		fi
	fi
	# A B B A: drift of the machine's speed over the whole run hits both
	# configurations alike
	i=0
	for mode in plugins plain plain plugins; do
		i=$((i + 1))
		echo "== proxy-bench $i/4: gwd ($mode) vs nginx, openresty" >&2
		set +e
		# shellcheck disable=SC2086
		"$HARNESS" ${BENCH_ARGS:--d 5 -r 2} --peers nginx,openresty \
			--base-port "${BASE_PORT:-18080}" \
			--candidate "$here/plugins-bench.sh --candidate $mode" \
			--candidate-port $((${BASE_PORT:-18080} + 10)) --candidate-name "gwd-$mode" \
			--results "$work/$mode.$i.tsv" 2>&1 | tee "$work/$mode.$i.out" >&2
		rc=${PIPESTATUS[0]}
		set -e
		if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then
			echo "plugins-bench: the harness failed (exit $rc) for gwd-$mode" >&2
			exit 1
		fi
		[ "$rc" = 3 ] && echo "plugins-bench: WARNING: noisy runs for gwd-$mode" >&2
	done
	A_NG=$(ratio gwd-plugins nginx "$work"/plugins.*.tsv)
	B_NG=$(ratio gwd-plain nginx "$work"/plain.*.tsv)
	VS_OPENRESTY=$(ratio gwd-plugins openresty "$work"/plugins.*.tsv)
	OR_NG=$(ratio openresty nginx "$work"/*.tsv)
	OVERHEAD=$(awk -v a="$A_NG" -v b="$B_NG" \
		'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1f\n", (1 - a / b) * 100; else print "n/a" }')
	CPU_A=$(median gwd-plugins 9 "$work"/plugins.*.tsv)
	CPU_B=$(median gwd-plain 9 "$work"/plain.*.tsv)
	CPU_OR=$(median openresty 9 "$work"/*.tsv)
	RPS_A=$(median gwd-plugins 3 "$work"/plugins.*.tsv)
	RPS_B=$(median gwd-plain 3 "$work"/plain.*.tsv)
	# the same two questions in CPU per request (steadier on a busy machine)
	OVERHEAD_CPU=$(awk -v a="$CPU_A" -v b="$CPU_B" \
		'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1f\n", (a / b - 1) * 100; else print "n/a" }')
	CPU_VS_OPENRESTY=$(awk -v a="$CPU_A" -v o="$CPU_OR" \
		'BEGIN { if (a + 0 > 0 && o + 0 > 0) printf "%.3f\n", o / a; else print "n/a" }')
fi

# the engine alone, and the corpus
WAF_MB=n/a DET=n/a FP=n/a
if [ -x "$B/bench/waf-bench" ]; then
	"$B/bench/waf-bench" 1 > "$work/waf-bench.out" 2>&1 || true
	cat "$work/waf-bench.out" >&2
	WAF_MB=$(sed -n 's/^waf_mb_s=//p' "$work/waf-bench.out" | tail -1)
fi
if [ -x "$B/tests/unit/test_waf_corpus" ]; then
	# the corpus files are read relative to the source tree
	(cd "$root" && "$B/tests/unit/test_waf_corpus") > "$work/corpus.out" 2>&1 || true
	grep -E '^(  (sqli|xss|traversal|scanner|protocol|overall) |== false)' "$work/corpus.out" >&2 || true
	DET=$(sed -n 's/^waf_detection_pct=//p' "$work/corpus.out" | tail -1)
	FP=$(sed -n 's/^waf_fp_pct=//p' "$work/corpus.out" | tail -1)
fi

echo
if [ -z "${SKIP_PROXY:-}" ]; then
	echo "# gwd-plugins (auth key + rate_limit + waf sqli xss traversal): ${RPS_A} req/s," \
	     "${A_NG} x nginx, cpu ${CPU_A} us/req"
	echo "# gwd-plain (same route, no plugins):                            ${RPS_B} req/s," \
	     "${B_NG} x nginx, cpu ${CPU_B} us/req"
	echo "# openresty (Lua access phase): ${OR_NG} x nginx, cpu ${CPU_OR} us/req"
	echo "# targets: plugin overhead <= 15 %, >= 1.5 x openresty"
	echo "# by CPU per request (less sensitive to other load): plugins cost" \
	     "${OVERHEAD_CPU} % more than plain gwd; openresty's cost / gwd-plugins' = ${CPU_VS_OPENRESTY}"
	echo "plugin_overhead_cpu_pct=${OVERHEAD_CPU}"
	echo "cpu_ratio_vs_openresty=${CPU_VS_OPENRESTY}"
fi
echo "# waf corpus: targets >= 95 % detection, <= 1 % false positives"
echo "plugin_overhead_pct=${OVERHEAD:-n/a}"
echo "ratio_vs_openresty=${VS_OPENRESTY:-n/a}"
echo "waf_detection_pct=${DET:-n/a}"
echo "waf_fp_pct=${FP:-n/a}"
echo "waf_mb_s=${WAF_MB:-n/a}"
