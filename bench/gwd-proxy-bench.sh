#!/usr/bin/env bash
# gwd-proxy-bench.sh — gwd against nginx (and friends) with the shared
# reverse-proxy harness (../shared/bench/proxy-bench.sh), plus gwd's own
# resource figures. Builds nothing: run it after the build.
#
#   bench/gwd-proxy-bench.sh                 # from the repository root
#   GW_BUILDDIR=/tmp/b bench/gwd-proxy-bench.sh
#
# Environment:
#   GW_BUILDDIR    where gwd and gwc are (default: ., then ./build)
#   PROXY_BENCH    the harness (default /work/shared/bench/proxy-bench.sh)
#   GWD_THREADS    gwd worker threads (default auto = cores)
#   BENCH_ARGS     extra harness flags (e.g. "--pin" or "-r 5 -d 8")
#   SKIP_PEERS=1   only the extra figures (RSS, reload), no harness runs
#   SKIP_EXTRA=1   only the harness runs
#
# What it runs: the harness at -c 64 and -c 256 for / (64 B) and /16k, gwd as
# the candidate (a one-route table: match any; proxy origin, keepalive 64,
# like the nginx peer), then:
#   rss_mib_10k_idle          gwd's RSS with 10,000 idle keep-alive clients
#   rss_growth_mib_1g_stream  RSS growth while a 1 GiB response streams
#                             through gwd to a reader limited to 100 MB/s
#   reload_visible_ms         rename() of a new table -> first response from it
# The last lines are machine-readable, one figure per line.
#
# When the harness starts the candidate it runs this script with
# --candidate: write the table and gateway.yaml into $BENCH_DIR, exec gwd.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

. "$here/lib.sh"

write_gw() {   # dir listen_port origin_port
	local d=$1 lp=$2 op=$3
	bench_table "$d" "$op"
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
	B=$(bench_find_build gwd-proxy-bench)
	write_gw "$BENCH_DIR" "$CANDIDATE_PORT" "$ORIGIN_PORT"
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	exec "$B/gwd" -c "$BENCH_DIR/gateway.yaml"
fi

B=$(bench_find_build gwd-proxy-bench)
export GW_BUILDDIR=$B
HARNESS=${PROXY_BENCH:-/work/shared/bench/proxy-bench.sh}
if [ -z "${SKIP_PEERS:-}" ] && ! command -v nginx >/dev/null; then
	echo "gwd-proxy-bench: nginx missing: run $(dirname "$HARNESS")/setup.sh (as root)" >&2
	exit 1
fi
work=$(mktemp -d /tmp/gwd-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

declare -A RATIO P99 CPU
run_harness() {   # label conns path
	local label=$1 c=$2 p=$3 out="$work/$1.out"
	echo "== proxy-bench -c $c -p $p" >&2
	set +e
	# shellcheck disable=SC2086
	"$HARNESS" -c "$c" -p "$p" ${BENCH_ARGS:-} --candidate "$here/gwd-proxy-bench.sh --candidate" \
		--candidate-port 18090 --candidate-name gwd 2>&1 | tee "$out" >&2
	set -e
	RATIO[$label]=$(sed -n 's/^ratio candidate\/nginx = //p' "$out" | tail -1)
	# table rows: target req/s spread p50 p99 non2xx sockerr cpu_us/r other vs_nginx status
	P99[gwd_$label]=$(awk '$1=="gwd" && NF>=10 {v=$5} END {print v}' "$out")
	P99[nginx_$label]=$(awk '$1=="nginx" && NF>=10 {v=$5} END {print v}' "$out")
	CPU[gwd_$label]=$(awk '$1=="gwd" && NF>=10 {v=$8} END {print v}' "$out")
	CPU[nginx_$label]=$(awk '$1=="nginx" && NF>=10 {v=$8} END {print v}' "$out")
}

if [ -z "${SKIP_PEERS:-}" ]; then
	run_harness c64 64 /
	run_harness c256 256 /
	run_harness c64_16k 64 /16k
	run_harness c256_16k 256 /16k
fi

# ------------------------------------------------------- gwd's own figures
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

RSS_IDLE=n/a RSS_GROWTH=n/a RELOAD_MS=n/a
if [ -z "${SKIP_EXTRA:-}" ]; then
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	op=18191 gp=18190
	"$B/gw-origin" --listen 127.0.0.1:$op --name bench >"$work/origin.out" 2>&1 &
	opid=$!
	write_gw "$work/gw" $gp $op
	"$B/gwd" -c "$work/gw/gateway.yaml" 2>"$work/gwd.err" &
	gpid=$!
	for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$gp/name" && break; sleep 0.05; done
	rss0=$(rss_kib $gpid)

	# 10,000 idle keep-alive connections (one request each, then idle)
	RSS_IDLE=$(python3 - "$gp" "$gpid" <<'PY'
import socket, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
socks = []
for i in range(10000):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /name HTTP/1.1\r\nHost: x\r\n\r\n")
    socks.append(s)
for s in socks:
    s.settimeout(5)
    s.recv(4096)
time.sleep(1)
rss = [l for l in open("/proc/%s/status" % pid) if l.startswith("VmRSS")][0].split()[1]
print("%.1f" % (int(rss) / 1024.0))
for s in socks:
    s.close()
PY
) || RSS_IDLE=n/a
	sleep 1

	# 1 GiB through gwd to a reader limited to 100 MB/s: sample RSS meanwhile
	base=$(rss_kib $gpid)
	peak=$base
	curl -s --limit-rate 100M -o /dev/null "http://127.0.0.1:$gp/bytes/1073741824" &
	cpid=$!
	while kill -0 $cpid 2>/dev/null; do
		r=$(rss_kib $gpid); [ "$r" -gt "$peak" ] && peak=$r
		sleep 0.2
	done
	RSS_GROWTH=$(awk -v a="$base" -v b="$peak" 'BEGIN {printf "%.1f", (b - a) / 1024}')

	# rename() of a new table -> first response from it (median of 5)
	RELOAD_MS=$(python3 - "$B/gwc" "$work/gw" "$gp" $op <<'PY'
import os, subprocess, sys, time, urllib.request
gwc, d, port, op = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
res = []
for v in range(1, 6):
    src = os.path.join(d, "v.gwr")
    open(src, "w").write('upstream origin { server 127.0.0.1:%s; keepalive 64; }\n'
                         'route v { match path == "/v"; respond 200 "v%d"; }\n'
                         'route all { match any; proxy origin; }\n' % (op, v))
    subprocess.run([gwc, "compile", src, "-o", os.path.join(d, "v.gwb")], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    os.rename(os.path.join(d, "v.gwb"), os.path.join(d, "bench.gwb"))
    while True:
        try:
            body = urllib.request.urlopen("http://127.0.0.1:%d/v" % port, timeout=2).read()
        except Exception:
            body = b""
        if body == b"v%d" % v:
            break
        if time.monotonic() - t0 > 5:
            break
    res.append((time.monotonic() - t0) * 1000)
    time.sleep(0.3)
res.sort()
print("%.1f" % res[len(res) // 2])
PY
) || RELOAD_MS=n/a
	kill $gpid $opid 2>/dev/null || true
	wait $gpid $opid 2>/dev/null || true
	echo "gwd RSS at start: $((rss0 / 1024)) MiB" >&2
fi

echo
echo "# gwd vs nginx (same harness runs); cpu_us/r = proxy CPU per request"
for l in c64 c256 c64_16k c256_16k; do
	echo "# $l: ratio ${RATIO[$l]:-n/a}, p99 gwd ${P99[gwd_$l]:-n/a} ms / nginx ${P99[nginx_$l]:-n/a} ms," \
	     "cpu_us/r gwd ${CPU[gwd_$l]:-n/a} / nginx ${CPU[nginx_$l]:-n/a}"
done
echo "ratio_vs_nginx_c64_16k=${RATIO[c64_16k]:-n/a}"
echo "ratio_vs_nginx_c256_16k=${RATIO[c256_16k]:-n/a}"
echo "cpu_us_per_req_gwd_c64=${CPU[gwd_c64]:-n/a}"
echo "cpu_us_per_req_nginx_c64=${CPU[nginx_c64]:-n/a}"
echo "ratio_vs_nginx_c64=${RATIO[c64]:-n/a}"
echo "ratio_vs_nginx_c256=${RATIO[c256]:-n/a}"
echo "p99_ms_gwd_c64=${P99[gwd_c64]:-n/a}"
echo "p99_ms_nginx_c64=${P99[nginx_c64]:-n/a}"
echo "rss_mib_10k_idle=$RSS_IDLE"
echo "rss_growth_mib_1g_stream=$RSS_GROWTH"
echo "reload_visible_ms=$RELOAD_MS"
