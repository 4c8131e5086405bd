# bench/lib.sh — what the gwd benchmark scripts share; sourced by
# gwd-proxy-bench.sh, plugins-bench.sh, ops-bench.sh and tls-bench.sh,
# which set $root (the repository) first.

# bench_find_build NAME: the directory holding gwd and gwc (GW_BUILDDIR,
# then ., ./build, the repository, its build/)
bench_find_build() {
	local d
	for d in "${GW_BUILDDIR:-}" . ./build "$root" "$root/build"; do
		[ -n "$d" ] && [ -x "$d/gwd" ] && [ -x "$d/gwc" ] && { (cd "$d" && pwd); return 0; }
	done
	echo "$1: gwd/gwc not found: build first, or set GW_BUILDDIR" >&2
	return 1
}

# bench_table DIR ORIGIN_PORT [ROUTE_LINES]: DIR/bench.gwb, the one-route
# table every proxy benchmark gives gwd (match any; proxy to the origin
# with keepalive 64, like the nginx peer), ROUTE_LINES before the proxy
# line; needs $B (bench_find_build)
bench_table() {
	local d=$1 op=$2 lines=${3:-}
	mkdir -p "$d"
	{
		printf 'upstream origin {\n    server 127.0.0.1:%s;\n    keepalive 64;\n    read_timeout 30s;\n}\n' "$op"
		printf 'route all {\n    match any;\n'
		[ -n "$lines" ] && printf '%s\n' "$lines"
		printf '    proxy origin;\n}\n'
	} > "$d/bench.gwr"
	"$B/gwc" compile "$d/bench.gwr" -o "$d/bench.gwb" >/dev/null
}
