#!/usr/bin/env bash
# tls-bench.sh — HTTPS through gwd against nginx terminating TLS in front of
# the same origin, in the same run: keep-alive req/s and CPU µs per request,
# and new TLS handshakes per second (wrk with "Connection: close": one full
# handshake per request).
#
#   bench/tls-bench.sh                       # from the repository root
#   GW_BUILDDIR=/tmp/b bench/tls-bench.sh
#
# Environment:
#   GW_BUILDDIR   where gwd and gwc are (default: ., then ./build)
#   WORKERS       nginx worker_processes = gwd threads (default 1)
#   CONNS         wrk connections (default 64)
#   DURATION      seconds per measured run (default 10)
#   ROUNDS        rounds; the order alternates (default 3)
#   KEY           ec (P-256, default) or rsa (2048 bits): the one certificate
#                 both servers use
#   BASE_PORT     origin; nginx +1, gwd +2 (default 18580)
#
# Same conditions for both: one certificate and key; TLS 1.2-1.3 and the
# client's cipher order (both pick the same suite; the script prints and
# compares what each negotiates with openssl s_client); no session
# resumption on either (gwd's libmicrohttpd has no session cache or
# tickets, nginx gets ssl_session_cache off + ssl_session_tickets off), so
# every new connection is a full handshake; keep-alive to the client and
# a keep-alive pool of 64 to the origin (an nginx serving 64 bytes).
# CPU per request: utime+stime of the server's processes over the run
# (origin and wrk excluded), divided by the requests wrk completed.
# The last lines are machine-readable.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
WORKERS=${WORKERS:-1}
CONNS=${CONNS:-64}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
KEY=${KEY:-ec}
BASE_PORT=${BASE_PORT:-18580}
OP=$BASE_PORT NP=$((BASE_PORT + 1)) GP=$((BASE_PORT + 2))

. "$here/lib.sh"
B=$(bench_find_build tls-bench)
for t in nginx wrk openssl curl; do
	command -v $t >/dev/null || { echo "tls-bench: $t missing (run /work/shared/bench/setup.sh)" >&2; exit 1; }
done
for p in $OP $NP $GP; do
	if (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
		echo "tls-bench: port $p is in use (set BASE_PORT)" >&2
		exit 1
	fi
done

W=$(mktemp -d /tmp/tls-bench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT

# ------------------------------------------------------------ certificate
if [ "$KEY" = rsa ]; then kopt=(-newkey rsa:2048); else kopt=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1); fi
openssl req -x509 "${kopt[@]}" -nodes -keyout "$W/ca.key" -out "$W/ca.pem" -days 2 \
	-subj "/CN=tls-bench CA" 2>/dev/null
openssl req "${kopt[@]}" -nodes -keyout "$W/srv.key" -out "$W/srv.csr" -subj "/CN=bench.test" 2>/dev/null
echo "subjectAltName=DNS:bench.test,IP:127.0.0.1" > "$W/srv.ext"
openssl x509 -req -in "$W/srv.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -set_serial 1 -days 2 \
	-extfile "$W/srv.ext" -out "$W/srv.pem" 2>/dev/null

# ------------------------------------------------------------ servers
BODY=$(printf '%-63s' "tls-bench origin fixed body" | tr ' ' '.')
nginx_conf() {   # dir, server block(s), worker_processes
	mkdir -p "$1"
	cat > "$1/nginx.conf" <<EOF
worker_processes $3;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http {
    access_log off;
    default_type text/plain;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    client_body_temp_path $1/cb; proxy_temp_path $1/px; fastcgi_temp_path $1/fc;
    uwsgi_temp_path $1/uw; scgi_temp_path $1/sc;
$2
}
EOF
}
nginx_conf "$W/origin" "    server { listen 127.0.0.1:$OP backlog=4096; location / { return 200 \"$BODY\n\"; } }" 1
nginx_conf "$W/nginx" "    upstream origin { server 127.0.0.1:$OP; keepalive 64; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:$NP ssl backlog=4096;
        ssl_certificate $W/srv.pem;
        ssl_certificate_key $W/srv.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header X-Forwarded-Proto https;
        }
    }" "$WORKERS"
bench_table "$W/gwd" "$OP"
cat > "$W/gwd/gateway.yaml" <<EOF
rules: bench.gwb
threads: $WORKERS
admin: {listen: 'off'}
access_log: {path: 'off'}
error_log: {level: warn}
limits: {max_connections: 20000}
tls:
  listen: 127.0.0.1:$GP
  cert: $W/srv.pem
  key: $W/srv.key
EOF
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

wait_tls() {   # port
	for _ in $(seq 200); do
		curl -s -o /dev/null --cacert "$W/ca.pem" "https://127.0.0.1:$1/" && return 0
		sleep 0.05
	done
	echo "tls-bench: nothing answers HTTPS on $1" >&2
	return 1
}
nginx -c "$W/origin/nginx.conf" -p "$W/origin" 2>"$W/origin.err" &
PIDS+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$OP/" && break; sleep 0.05; done
nginx -c "$W/nginx/nginx.conf" -p "$W/nginx" 2>"$W/nginx.err" &
NPID=$!
PIDS+=($NPID)
"$B/gwd" -c "$W/gwd/gateway.yaml" 2>"$W/gwd.err" &
GPID=$!
PIDS+=($GPID)
wait_tls $NP
wait_tls $GP

# both answer the origin's body, and negotiate the same TLS
for t in nginx:$NP gwd:$GP; do
	b=$(curl -s --cacert "$W/ca.pem" "https://127.0.0.1:${t#*:}/")
	[ "$b" = "$BODY" ] || { echo "tls-bench: ${t%%:*} answered '$b'" >&2; exit 1; }
done
negotiated() {
	echo | openssl s_client -connect "127.0.0.1:$1" 2>/dev/null |
		awk '/^New, / {v=$2; c=$NF} /Server Temp Key/ {k=$4 $5} /Peer signature type/ {s=$4}
		     END {sub(/,$/, "", v); sub(/,$/, "", k); print v, c, k, s}'
}
NEG_N=$(negotiated $NP)
NEG_G=$(negotiated $GP)
echo "negotiated: nginx: $NEG_N" >&2
echo "negotiated: gwd:   $NEG_G" >&2
[ "$NEG_N" = "$NEG_G" ] || echo "tls-bench: WARNING: the two negotiate different TLS parameters" >&2

# ------------------------------------------------------------ measuring
CLK=$(getconf CLK_TCK)
ticks() {   # pids... -> utime+stime of each and its threads
	local s=0 p
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] && s=$((s + $(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat")))
	done
	echo $s
}
server_pids() {   # name -> the processes that do its work
	if [ "$1" = nginx ]; then echo "$NPID $(pgrep -P $NPID | tr '\n' ' ')"; else echo "$GPID"; fi
}
port_of() { if [ "$1" = nginx ]; then echo $NP; else echo $GP; fi; }

declare -A RPS CPU HS HSCPU
run() {   # name mode(ka|hs) -> "rps cpu_us_per_req"
	local name=$1 mode=$2 port pids t0 t1 out req rps
	port=$(port_of "$name")
	pids=$(server_pids "$name")
	local hdr=()
	[ "$mode" = hs ] && hdr=(-H 'Connection: close')
	# shellcheck disable=SC2086
	t0=$(ticks $pids)
	out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" "${hdr[@]}" "https://127.0.0.1:$port/" 2>&1)
	# shellcheck disable=SC2086
	t1=$(ticks $pids)
	req=$(echo "$out" | awk '/requests in/ {print $1}')
	rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
	if echo "$out" | grep -q 'Non-2xx\|Socket errors: connect [1-9]'; then
		echo "tls-bench: $name $mode: $(echo "$out" | grep 'Non-2xx\|Socket errors')" >&2
	fi
	awk -v r="$rps" -v q="$req" -v d=$((t1 - t0)) -v clk="$CLK" \
		'BEGIN {printf "%.0f %.1f\n", r, (q > 0 ? d * 1e6 / clk / q : 0)}'
}

# warm-up (discarded)
for n in nginx gwd; do
	wrk -t1 -c"$CONNS" -d2s "https://127.0.0.1:$(port_of $n)/" >/dev/null 2>&1 || true
done
for ((r = 1; r <= ROUNDS; r++)); do
	order="nginx gwd"
	[ $((r % 2)) -eq 0 ] && order="gwd nginx"
	for mode in ka hs; do
		for n in $order; do
			read -r rps cpu < <(run "$n" "$mode")
			echo "round $r $mode $n: $rps req/s, $cpu us/req" >&2
			if [ "$mode" = ka ]; then RPS[$n]+="$rps "; CPU[$n]+="$cpu "; else HS[$n]+="$rps "; HSCPU[$n]+="$cpu "; fi
			sleep 1
		done
	done
done
kill -0 "$GPID" 2>/dev/null || { echo "tls-bench: gwd died:" >&2; tail "$W/gwd.err" >&2; exit 1; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {print (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2)}'; }
declare -A M
for n in nginx gwd; do
	M[rps_$n]=$(echo "${RPS[$n]}" | median)
	M[cpu_$n]=$(echo "${CPU[$n]}" | median)
	M[hs_$n]=$(echo "${HS[$n]}" | median)
	M[hscpu_$n]=$(echo "${HSCPU[$n]}" | median)
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }

echo
echo "tls-bench: $(date -u '+%Y-%m-%dT%H:%M:%SZ')  cpus=$(nproc)  workers=$WORKERS  wrk -t1 -c$CONNS -d${DURATION}s x $ROUNDS rounds (medians)  key=$KEY"
echo "TLS: $NEG_G"
printf "%-8s %12s %10s %14s %12s\n" target "req/s(ka)" "us/req" "handshakes/s" "us/hs"
for n in nginx gwd; do
	printf "%-8s %12s %10s %14s %12s\n" $n "${M[rps_$n]}" "${M[cpu_$n]}" "${M[hs_$n]}" "${M[hscpu_$n]}"
done
echo "tls_rps_gwd=${M[rps_gwd]}"
echo "tls_rps_nginx=${M[rps_nginx]}"
echo "tls_cpu_us_per_req_gwd=${M[cpu_gwd]}"
echo "tls_cpu_us_per_req_nginx=${M[cpu_nginx]}"
echo "tls_handshakes_per_s_gwd=${M[hs_gwd]}"
echo "tls_handshakes_per_s_nginx=${M[hs_nginx]}"
echo "tls_ratio_vs_nginx=$(ratio "${M[rps_gwd]}" "${M[rps_nginx]}")"
echo "tls_handshakes_ratio_vs_nginx=$(ratio "${M[hs_gwd]}" "${M[hs_nginx]}")"
