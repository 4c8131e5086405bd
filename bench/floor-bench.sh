#!/usr/bin/env bash
# floor-bench.sh — how close to nginx can any proxy built on libcurl and
# libmicrohttpd get on this machine? Measures, in one run and under the
# same load (wrk -c 64, one thread, the harness's nginx origin with its
# 64-byte body):
#   nginx_us      CPU per request of nginx proxying (worker_processes 1,
#                 upstream keepalive 64: the harness's nginx peer)
#   wrk_us        wrk's own CPU per request, origin_us the origin's
#   mhd_us        bench/floor-mhd: libmicrohttpd answering from memory in
#                 gwd's event-loop mode (no upstream at all)
#   curl_user_us  bench/floor-curl: libcurl's user CPU per keep-alive GET
#                 through the multi socket API (no server side at all);
#                 curl_sys_us its kernel CPU
#   gwd_us        gwd proxying with the one-route table of the other gwd
#                 benchmarks (bench_table), default gateway.yaml settings
# and derives
#   floor_us = mhd_us + curl_user_us — a lower bound on a gateway's CPU per
#     request with these two libraries (it leaves out the upstream side's
#     kernel work, every header copy, routing, logging);
#   cpu_ratio_bound = nginx_us / floor_us;
#   throughput_ratio_bound = (wrk+origin+nginx) / (wrk+origin+floor): the
#     most req/s such a gateway can reach against nginx while wrk, the
#     origin and the proxy share the machine's cores (the harness's setup;
#     every process there is CPU-bound).
# Medians over ROUNDS rounds (default 3) of D seconds (default 8).
#
#   bench/floor-bench.sh            # from the repository root, after make
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib.sh"
B=$(bench_find_build floor-bench)
for t in nginx wrk curl; do
	command -v $t >/dev/null || { echo "floor-bench: $t missing (../shared/bench/setup.sh)" >&2; exit 1; }
done
[ -x "$B/bench/floor-curl" ] && [ -x "$B/bench/floor-mhd" ] ||
	{ echo "floor-bench: $B/bench/floor-curl or floor-mhd not built" >&2; exit 1; }
ROUNDS=${ROUNDS:-3} D=${D:-8}
OP=${BASE_PORT:-18380} PP=$((OP + 1)) MP=$((OP + 2)) GP=$((OP + 3))

work=$(mktemp -d /tmp/floor-bench.XXXXXX)
chmod 755 "$work"                # nginx workers run as 'nobody' when we are root
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

body=$(printf '%-63s' "proxy-bench origin fixed body" | tr ' ' '.')
nginx_conf() {   # dir server-block
	mkdir -p "$1"
	{
		printf 'worker_processes 1;\ndaemon off;\npid %s/nginx.pid;\n' "$1"
		printf 'error_log %s/error.log warn;\nworker_rlimit_nofile 65536;\n' "$1"
		printf 'events { worker_connections 20000; }\nhttp {\n'
		printf '    access_log off;\n    default_type text/plain;\n'
		printf '    keepalive_timeout 75s;\n    keepalive_requests 1000000;\n'
		printf '    client_body_temp_path %s/cb; proxy_temp_path %s/px;\n' "$1" "$1"
		printf '    fastcgi_temp_path %s/fc; uwsgi_temp_path %s/uw; scgi_temp_path %s/sc;\n' "$1" "$1" "$1"
		printf '%s\n}\n' "$2"
	} > "$1/nginx.conf"
}
nginx_conf "$work/origin" "    server { listen 127.0.0.1:$OP backlog=4096; location / { return 200 \"$body\n\"; } }"
nginx_conf "$work/proxy" "    upstream origin { server 127.0.0.1:$OP; keepalive 64; keepalive_requests 1000000; }
    server { listen 127.0.0.1:$PP backlog=4096;
        location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"

nginx -p "$work/origin" -c "$work/origin/nginx.conf" 2>/dev/null & pids+=($!)
nginx -p "$work/proxy" -c "$work/proxy/nginx.conf" 2>/dev/null & pids+=($!)
"$B/bench/floor-mhd" "$MP" & pids+=($!)
mhd=$!
bench_table "$work/gw" "$OP"
printf 'listen: 127.0.0.1:%s\nrules: bench.gwb\nadmin: {listen: off}\naccess_log: {path: off}\nerror_log: {level: warn}\n' \
	"$GP" > "$work/gw/gateway.yaml"
"$B/gwd" -c "$work/gw/gateway.yaml" 2>"$work/gwd.err" & pids+=($!)
gwd=$!
for p in $OP $PP $MP $GP; do
	for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$p/" && break; sleep 0.05; done
done
worker_of() {   # the nginx worker whose master runs with prefix $1
	local w
	for w in $(pgrep -f "nginx: worker"); do
		tr '\0' ' ' < "/proc/$(ps -o ppid= -p "$w" | tr -d ' ')/cmdline" | grep -q -- "-p $1 " && echo "$w"
	done
	return 0
}
ow=$(worker_of "$work/origin") pw=$(worker_of "$work/proxy")
[ -n "$ow" ] && [ -n "$pw" ] || { echo "floor-bench: nginx did not start" >&2; exit 1; }
hz=$(getconf CLK_TCK)
cpu_us() { awk -v hz="$hz" '{printf "%d", ($14 + $15) * 1000000 / hz}' "/proc/$1/stat"; }
# user + system CPU of this shell's finished children (wrk), in us
# (times must run in this shell, not in a pipeline's subshell)
kids_us() {
	times > "$work/times"
	awk 'NR == 2 { gsub(/[ms]/, " "); printf "%d", ($1 * 60 + $2 + $3 * 60 + $4) * 1e6 }' "$work/times"
}
per() { awk -v a="$1" -v n="$2" 'BEGIN {printf "%.2f", a / n}'; }

# wrk_round PORT PID: one wrk -c64 run on PORT; prints requests and the CPU
# (us) PID, the origin and wrk spent on them
wrk_round() {
	local c0 c1 o0 o1 k0 k1 req
	wrk -t1 -c64 -d1 "http://127.0.0.1:$1/" >/dev/null
	kids_us > "$work/k0"
	c0=$(cpu_us "$2") o0=$(cpu_us "$ow") k0=$(cat "$work/k0")
	wrk -t1 -c64 -d"$D" "http://127.0.0.1:$1/" > "$work/wrk.out"
	kids_us > "$work/k1"
	c1=$(cpu_us "$2") o1=$(cpu_us "$ow") k1=$(cat "$work/k1")
	if grep -q -E "Non-2xx|Socket errors" "$work/wrk.out"; then
		echo "floor-bench: errors on port $1:" >&2
		cat "$work/wrk.out" >&2
		return 1
	fi
	req=$(awk '/requests in/ {print $1}' "$work/wrk.out")
	echo "$req $((c1 - c0)) $((o1 - o0)) $((k1 - k0))"
}

: > "$work/rounds"
for r in $(seq "$ROUNDS"); do
	read -r n c o w < <(wrk_round "$PP" "$pw")
	nginx_us=$(per "$c" "$n") origin_us=$(per "$o" "$n") wrk_us=$(per "$w" "$n")
	nginx_rps=$((n / D))
	read -r n c _ _ < <(wrk_round "$MP" "$mhd")
	mhd_us=$(per "$c" "$n")
	line=$("$B/bench/floor-curl" "http://127.0.0.1:$OP/" 64 "$D")
	curl_user=$(sed -n 's/.*user_us_per_req=\([0-9.]*\).*/\1/p' <<<"$line")
	curl_sys=$(sed -n 's/.*sys_us_per_req=\([0-9.]*\).*/\1/p' <<<"$line")
	read -r n c _ _ < <(wrk_round "$GP" "$gwd")
	gwd_us=$(per "$c" "$n") gwd_rps=$((n / D))
	echo "# round $r: nginx proxy $nginx_rps req/s, $nginx_us us/req (wrk $wrk_us, origin $origin_us);" \
	     "gwd $gwd_rps req/s, $gwd_us us/req;" \
	     "floor-mhd $mhd_us us/req; floor-curl user $curl_user + sys $curl_sys us/req" >&2
	echo "$nginx_us $wrk_us $origin_us $mhd_us $curl_user $curl_sys $gwd_us" >> "$work/rounds"
done

med() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
col() { awk -v c="$1" '{print $c}' "$work/rounds" | med; }
awk -v n="$(col 1)" -v w="$(col 2)" -v o="$(col 3)" -v m="$(col 4)" -v cu="$(col 5)" -v cs="$(col 6)" -v g="$(col 7)" 'BEGIN {
	f = m + cu
	printf "nginx_us=%.2f\nwrk_us=%.2f\norigin_us=%.2f\n", n, w, o
	printf "mhd_us=%.2f\ncurl_user_us=%.2f\ncurl_sys_us=%.2f\n", m, cu, cs
	printf "gwd_us=%.2f\n", g
	printf "floor_us=%.2f\ncpu_ratio_bound=%.2f\nthroughput_ratio_bound=%.2f\n", f, n / f, (w + o + n) / (w + o + f)
}'
