#!/bin/sh
# test_packaging.sh: the operator-facing files of gw are right.
#
#   man pages     gwc(1) gwd(8) gwr(5) render with groff -ww and man -l
#                 without a warning, and name every gwc subcommand, every
#                 gwd option, every gateway.yaml key of examples/ and every
#                 directive of grammar/grammar.md
#   systemd       examples/systemd/gwd.service has the hardening and the
#                 HUP reload it promises, its ExecStartPre check runs (and
#                 fails on a broken config), systemd-analyze verify accepts
#                 it and rates its exposure OK (when systemd-analyze exists)
#   alerts        examples/prometheus/alerts.yml: check_examples (structure,
#                 every metric name one gwd exports: runtime/metrics.c and a
#                 live scrape of gwd's /metrics), and promtool check rules +
#                 promtool test rules alerts.test.yml when promtool exists
#   ci            examples/ci/pre-commit passes on examples/ (as a real git
#                 hook and with --all), refuses misformatted, shadowed and
#                 untested rules, checks the index rather than the working
#                 tree; github-actions.yml is a well-formed workflow that
#                 runs it
#   logrotate     examples/logrotate/gw parses (logrotate -d) and a forced
#                 rotation with gwd running moves the access log and gwd
#                 writes to a new one after USR1
#
# Run by `make check` (GW_BUILDDIR and GW_SRCDIR set); by hand:
#   GW_BUILDDIR=build GW_SRCDIR=. sh tests/unit/test_packaging.sh
# Output is TAP-like; exit 0 when every check passed, 1 otherwise. A check
# whose tool is missing is reported as "# SKIP" (tools/deps.sh installs
# groff; systemd-analyze, promtool, logrotate and git are optional).
set -u

B=$(cd "${GW_BUILDDIR:-.}" && pwd)
S=$(cd "${GW_SRCDIR:-${srcdir:-.}}" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/gw-packaging.XXXXXX")
PIDS=
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	if [ "$fails" -eq 0 ] && [ -z "${GWT_KEEP:-}" ]; then rm -rf "$T"; else echo "# kept $T"; fi
}
n=0
fails=0
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n - # SKIP $*"; }
have() { command -v "$1" >/dev/null 2>&1; }
# check DESCRIPTION COMMAND...: passes when COMMAND exits 0
check() {
	desc=$1
	shift
	if "$@" > "$T/out" 2>&1; then ok "$desc"; else not_ok "$desc"; sed 's/^/#   /' "$T/out"; fi
}
# refuses DESCRIPTION COMMAND...: passes when COMMAND exits non-zero
refuses() {
	desc=$1
	shift
	if "$@" > "$T/out" 2>&1; then not_ok "$desc"; sed 's/^/#   /' "$T/out"; else ok "$desc"; fi
}
# refuses_with DESCRIPTION PATTERN COMMAND...: COMMAND exits non-zero and
# its output matches PATTERN (it failed for the reason the test is about)
refuses_with() {
	desc=$1
	pat=$2
	shift 2
	if "$@" > "$T/out" 2>&1 || ! grep -qE -- "$pat" "$T/out"; then
		not_ok "$desc"
		sed 's/^/#   /' "$T/out"
	else
		ok "$desc"
	fi
}
# quiet FILE: FILE is empty (a tool printed no warning)
quiet() {
	if [ -s "$1" ]; then cat "$1"; return 1; fi
	return 0
}

for prog in gwc gwd gw-origin tests/unit/check_examples; do
	if [ ! -x "$B/$prog" ]; then
		echo "# $B/$prog is not built"
		exit 77
	fi
done
GWC=$B/gwc
GWD=$B/gwd
CHECK=$B/tests/unit/check_examples

# ------------------------------------------------------------- man pages
for page in gwc.1 gwd.8 gwr.5; do
	f=$S/man/$page
	if have groff; then
		groff -man -Tutf8 -ww -z "$f" > "$T/groff.err" 2>&1
		check "man/$page: groff -man -ww renders it without a warning" quiet "$T/groff.err"
	else
		skip "man/$page: groff not installed"
	fi
	if have man; then
		MANWIDTH=80 man -l "$f" > "$T/man.out" 2> "$T/man.err"
		check "man/$page: man -l renders it without a warning" quiet "$T/man.err"
		check "man/$page: man -l output has a NAME section" grep -q '^NAME' "$T/man.out"
	else
		skip "man/$page: man not installed"
	fi
	check "man/$page: ASCII only (no preconv surprises)" sh -c "! LC_ALL=C grep -n '[^[:print:][:space:]]' '$f'"
done

# every subcommand of `gwc --help` has its entry in gwc(1)
"$GWC" --help | sed -n 's/^  \([a-z][a-z]*\) .*/\1/p' > "$T/gwc-cmds"
missing=
for c in $(cat "$T/gwc-cmds"); do
	grep -q "^\.B $c\( \|$\)" "$S/man/gwc.1" || missing="$missing $c"
done
check "gwc(1) documents every subcommand of gwc --help ($(tr '\n' ' ' < "$T/gwc-cmds"))" test -z "$missing" -a -s "$T/gwc-cmds"
[ -z "$missing" ] || echo "#   missing:$missing"

# every option of `gwd --help` is in gwd(8)
missing=
for o in $("$GWD" --help 2>&1 | sed -n 's/^  \(-[a-z-]*\) .*/\1/p'); do
	esc=$(printf '%s' "$o" | sed 's/-/\\\\-/g')
	grep -q "$esc" "$S/man/gwd.8" || missing="$missing $o"
done
check "gwd(8) documents every option of gwd --help" test -z "$missing"
[ -z "$missing" ] || echo "#   missing:$missing"

# every key of examples/gateway.yaml (a.b for nested keys) is in gwd(8)
awk '
	/^[a-z_]+:/ { top = $1; sub(/:.*/, "", top); print top; next }
	/^  [a-z_]+:/ { k = $1; sub(/:.*/, "", k); print top "." k }
' "$S/examples/gateway.yaml" | sort -u > "$T/yaml-keys"
missing=
for k in $(cat "$T/yaml-keys"); do
	grep -qF "$k" "$S/man/gwd.8" || missing="$missing $k"
done
check "gwd(8) documents every key of examples/gateway.yaml ($(wc -l < "$T/yaml-keys") keys)" test -z "$missing" -a -s "$T/yaml-keys"
[ -z "$missing" ] || echo "#   missing:$missing"

# every directive of grammar.md's directive table is in gwr(5)
sed -n '/^## 4\. Directive forms/,/^## 5\./p' "$S/grammar/grammar.md" |
	awk -F'|' '/^\| `/ { print $2 }' | grep -o '`[a-z_]*' | tr -d '`' | sort -u > "$T/directives"
missing=
for d in $(cat "$T/directives"); do
	# on a bold macro line, as a whole word
	grep -Eq "^\.(B|BI|BR|IB)( .*[^a-z_]|[^a-z_]*)$d([^a-z_]|\$)" "$S/man/gwr.5" || missing="$missing $d"
done
check "gwr(5) documents every directive of grammar.md ($(wc -l < "$T/directives") directives)" test -z "$missing" -a -s "$T/directives"
[ -z "$missing" ] || echo "#   missing:$missing"

# --------------------------------------------------------------- systemd
unit=$S/examples/systemd/gwd.service
for want in 'ExecStartPre=/usr/local/bin/gwd -t -c ' 'ExecStart=/usr/local/bin/gwd -c ' \
	'ExecReload=/bin/kill -HUP $MAINPID' 'NoNewPrivileges=yes' 'ProtectSystem=strict' \
	'ProtectHome=yes' 'PrivateTmp=yes' 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE' \
	'AmbientCapabilities=CAP_NET_BIND_SERVICE' 'User=gw' 'LimitNOFILE=' \
	'ReadWritePaths=/var/lib/gw /var/log/gw' 'KillSignal=SIGTERM'; do
	check "gwd.service: $want" grep -qF "$want" "$unit"
done
# a unit file's shape: sections, and Key=Value lines in them
check "gwd.service: only [Unit] [Service] [Install] sections and Key=Value lines" awk '
	/^[[:space:]]*(#|;|$)/ { next }
	/^\[(Unit|Service|Install)\]$/ { sec = 1; next }
	/^\[/ { print "unknown section: " $0; bad = 1; next }
	!sec || !/^[A-Za-z]+=/ { print "line " NR ": " $0; bad = 1 }
	END { exit bad }' "$unit"

# the ExecStartPre check itself, on a good and a broken configuration
origin_out=$T/origin.out
"$B/gw-origin" --listen 127.0.0.1:0 --name a > "$origin_out" 2>&1 &
PIDS="$PIDS $!"
oport=
for _ in $(seq 50); do
	oport=$(sed -n 's/^listening 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$origin_out")
	[ -n "$oport" ] && break
	sleep 0.1
done
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
		echo $((20000 + $$ % 10000 + ${1:-0}))
}
port=$(free_port 1)
aport=$(free_port 2)
mkdir -p "$T/gw/logs"
cat > "$T/gw/rules.gwr" <<EOF
upstream api { server 127.0.0.1:${oport:-1}; }
route login { match path == "/login"; rate_limit 1r/s burst=1; proxy api; }
route search { match path == "/search"; waf sqli; proxy api; }
route echo { match path ^= "/echo"; proxy api; }
route fallback { match any; respond 404 "no route"; }
EOF
"$GWC" compile "$T/gw/rules.gwr" > "$T/out" 2>&1 || cat "$T/out"
cat > "$T/gw/gateway.yaml" <<EOF
listen: 127.0.0.1:$port
rules: rules.gwb
threads: 1
admin: {listen: 127.0.0.1:$aport}
access_log: {path: logs/access.log, format: json}
error_log: {path: logs/error.log, level: info}
EOF
pre=$(sed -n 's/^ExecStartPre=//p' "$unit" | sed "s|^/usr/local/bin/gwd|$GWD|; s|/etc/gw/gateway.yaml|$T/gw/gateway.yaml|")
# shellcheck disable=SC2086 # the unit's command line, split as systemd does
check "gwd.service: ExecStartPre ($pre) accepts a good configuration" $pre
printf 'listen: [\n' > "$T/gw/broken.yaml"
bad=$(printf '%s' "$pre" | sed "s|$T/gw/gateway.yaml|$T/gw/broken.yaml|")
# shellcheck disable=SC2086
refuses "gwd.service: ExecStartPre refuses a broken configuration (the start stops there)" $bad

if have systemd-analyze; then
	sed "s|/usr/local/bin/gwd|$GWD|g" "$unit" > "$T/gwd.service"
	check "gwd.service: systemd-analyze verify" systemd-analyze verify --man=no "$T/gwd.service"
	if systemd-analyze security --offline=yes "$T/gwd.service" > "$T/security" 2>&1; then
		level=$(sed -n 's/.*Overall exposure level for gwd.service: \([0-9.]*\).*/\1/p' "$T/security")
		check "gwd.service: systemd-analyze security exposure $level < 3.0 (OK)" awk -v l="$level" 'BEGIN { exit !(l != "" && l + 0 < 3.0) }'
	else
		skip "gwd.service: systemd-analyze security --offline not supported"
	fi
else
	skip "gwd.service: systemd-analyze not installed"
fi

# ------------------------------------------------- gwd running: alerts, logs
"$GWD" -c "$T/gw/gateway.yaml" > "$T/gwd.out" 2>&1 &
gwd_pid=$!
PIDS="$PIDS $gwd_pid"
up=
for _ in $(seq 100); do
	if curl -s -o /dev/null "http://127.0.0.1:$aport/status" 2>/dev/null; then up=1; break; fi
	sleep 0.1
done
check "gwd started for the live checks" test -n "$up"
for i in 1 2 3; do
	curl -s -o /dev/null "http://127.0.0.1:$port/echo/$i"
	curl -s -o /dev/null "http://127.0.0.1:$port/login"
	curl -s -o /dev/null "http://127.0.0.1:$port/search?q=1%27%20or%201=1--%20"
	curl -s -o /dev/null "http://127.0.0.1:$port/nothing"
done
curl -s "http://127.0.0.1:$aport/metrics" > "$T/scrape.txt"
check "gwd /metrics scraped" grep -q '^gw_requests_total{' "$T/scrape.txt"

alerts=$S/examples/prometheus/alerts.yml
check "alerts.yml: check_examples (structure; metrics.c and the live scrape)" \
	"$CHECK" alerts "$alerts" "$S/runtime/metrics.c" "$T/scrape.txt"
# names straight from the scrape alone: the families every gwd shows at once
for m in gw_requests_total gw_upstream_server_up gw_upstream_server_draining gw_reloads_total \
	gw_table_info gw_request_duration_seconds_bucket gw_waf_blocks_total \
	gw_upstream_retries_total gw_upstream_server_requests_total gw_access_log_dropped_total; do
	if grep -q "$m" "$alerts"; then
		check "alerts.yml uses $m, which the live /metrics has" grep -q "^$m[{ ]" "$T/scrape.txt"
	fi
done
for cat in 'code_class="5xx"' 'gw_upstream_server_up' 'gw_reloads_total{result="error"}' 'gw_ratelimit_decisions_total{result="limited"}'; do
	check "alerts.yml covers $cat" grep -qF "$cat" "$alerts"
done
sed 's/gw_reloads_total{/gw_reload_total{/' "$alerts" > "$T/bad-alerts.yml"
refuses "check_examples refuses an unknown metric name" "$CHECK" alerts "$T/bad-alerts.yml" "$S/runtime/metrics.c"
sed 's/severity: warning/severity: loud/' "$alerts" > "$T/bad-alerts.yml"
refuses "check_examples refuses an unknown severity" "$CHECK" alerts "$T/bad-alerts.yml" "$S/runtime/metrics.c"
if have promtool; then
	check "alerts.yml: promtool check rules" promtool check rules "$alerts"
	check "alerts.yml: promtool test rules alerts.test.yml" sh -c "cd '$S/examples/prometheus' && promtool test rules alerts.test.yml"
else
	skip "alerts.yml: promtool not installed"
fi

# logrotate: parse, then a forced rotation with this gwd's USR1
lr=$S/examples/logrotate/gw
check "logrotate/gw: postrotate sends USR1" grep -q 'USR1' "$lr"
if have logrotate; then
	me=$(id -un)
	grp=$(id -gn)
	# as root, logrotate switches to the log owner (here: us); without
	# root it cannot switch at all
	if [ "$(id -u)" -eq 0 ]; then su_line="su $me $grp"; else su_line=""; fi
	sed -e "s|/var/log/gw|$T/gw/logs|" -e "s|su gw gw|$su_line|" \
		-e "s|create 0640 gw gw|create 0640 $me $grp|" "$lr" > "$T/lr-parse.conf"
	logrotate -d -s "$T/lr.state" "$T/lr-parse.conf" > "$T/lr.out" 2>&1
	rc=$?
	check "logrotate/gw: logrotate -d accepts it" sh -c "[ $rc -eq 0 ] && ! grep -Ei 'error:|unknown|bad ' '$T/lr.out'"
	# the same rotation for real, the signal aimed at this test's gwd only
	awk -v pid="$gwd_pid" '
		/postrotate/ { print; print "        kill -USR1 " pid; skip = 1; next }
		/endscript/ { skip = 0 }
		!skip' "$T/lr-parse.conf" | sed 's/^    compress$/    nocompress/; s/^    delaycompress$//' > "$T/lr-run.conf"
	chmod 644 "$T/lr-run.conf"
	lines_before=$(wc -l < "$T/gw/logs/access.log")
	check "logrotate/gw: forced rotation runs" logrotate -f -s "$T/lr.state" "$T/lr-run.conf"
	sleep 0.5
	curl -s -o /dev/null "http://127.0.0.1:$port/echo/after-rotation"
	got=
	for _ in $(seq 50); do
		if grep -q 'after-rotation' "$T/gw/logs/access.log" 2>/dev/null; then got=1; break; fi
		sleep 0.1
	done
	check "logrotate/gw: the old log was moved ($lines_before lines) and gwd writes the new one after USR1" \
		sh -c "[ -n '$got' ] && ls '$T/gw/logs' | grep -q '^access.log-' && [ $lines_before -gt 0 ]"
else
	skip "logrotate/gw: logrotate not installed"
fi

# --------------------------------------------------------------------- ci
hook=$S/examples/ci/pre-commit
wf=$S/examples/ci/github-actions.yml
for c in 'fmt --check' 'check --strict --format=sarif' 'test '; do
	check "pre-commit runs gwc $c" grep -qF -- "\"\$GWC\" $c" "$hook"
done
check "pre-commit runs gwc test with --min-coverage" grep -qF -- '--min-coverage="$MIN_COVERAGE"' "$hook"
check "github-actions.yml: a well-formed workflow" "$CHECK" workflow "$wf"
check "github-actions.yml: runs the pre-commit checks with SARIF output" grep -qF 'ci/pre-commit --all --sarif gwc.sarif' "$wf"
check "github-actions.yml: uploads the SARIF" grep -qF 'upload-sarif' "$wf"

mkdir -p "$T/repo"
cp -R "$S/examples/." "$T/repo/"
check "pre-commit --all passes on examples/" env GWC="$GWC" sh "$hook" --all --sarif "$T/gwc.sarif" "$T/repo"
check "pre-commit --all wrote a SARIF 2.1.0 log" grep -q '"version":"2.1.0"' "$T/gwc.sarif"

if have git; then
	cd "$T/repo" || exit 1
	git init -q . && git config user.email gw@example.invalid && git config user.name gw &&
		git config commit.gpgsign false
	cp "$hook" .git/hooks/pre-commit
	chmod +x .git/hooks/pre-commit
	git add -A
	check "pre-commit hook: the examples commit" env GWC="$GWC" git commit -q -m examples
	commit() { env GWC="$GWC" GW_MIN_COVERAGE="${MINCOV:-80}" git commit -q -m "$1"; }
	# a route in demo.gwr before its catch-all `fallback`
	before_fallback() {
		awk -v r="$1" '/^route fallback/ { print r; print "" } { print }' demo.gwr > x && mv x demo.gwr
	}

	before_fallback 'route  extra {match path == "/extra"; respond 200;}'
	git add demo.gwr
	refuses_with "pre-commit hook: refuses a misformatted file" '^demo\.gwr$' commit misformatted
	"$GWC" fmt demo.gwr
	git add demo.gwr
	check "pre-commit hook: the file formatted passes (demo coverage 6/7 >= 80%)" commit formatted
	MINCOV=90
	before_fallback 'route extra2 {
    match path == "/extra2";
    respond 200;
}'
	git add demo.gwr
	refuses_with "pre-commit hook: refuses coverage below GW_MIN_COVERAGE=90" \
		'coverage 7[0-9.]*% is below --min-coverage=90' commit coverage
	git checkout -q HEAD -- demo.gwr
	MINCOV=80
	before_fallback 'route shadowed {
    match path == "/healthz";
    respond 200;
}'
	git add demo.gwr
	refuses_with "pre-commit hook: refuses a shadowed route (--strict)" \
		"route 'shadowed' can never match.*-Wshadowed" commit shadowed
	git checkout -q HEAD -- demo.gwr
	sed 's/expect: {route: home/expect: {route: healthz/' demo.cases.yaml > x && mv x demo.cases.yaml
	if git diff --quiet demo.cases.yaml; then
		not_ok "pre-commit hook: could not break a case in demo.cases.yaml"
	else
		git add demo.cases.yaml
		refuses_with "pre-commit hook: refuses a failing route test" '[0-9]+ passed, 1 failed' commit failing-case
	fi
	git checkout -q HEAD -- demo.cases.yaml
	# staged content is checked, not the working tree
	printf '\nroute  bad {match any; respond 200;}\n' >> legacy/rules.gwr
	git add legacy/rules.gwr
	git show HEAD:legacy/rules.gwr > legacy/rules.gwr     # the working tree is fine again
	refuses_with "pre-commit hook: checks what is staged, not the working tree" \
		'^legacy/rules\.gwr$' commit staged
	git reset -q HEAD -- legacy/rules.gwr
	echo "notes" > README.txt
	git add README.txt
	check "pre-commit hook: commits without rules pass at once" commit readme
	cd "$S" || exit 1
else
	skip "pre-commit hook: git not installed"
fi

echo "1..$n"
[ "$fails" -eq 0 ]
