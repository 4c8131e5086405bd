#!/bin/sh
# test_gwc.sh — the gwc binary as users and CI scripts call it: exit codes
# 0/1/2, diagnostics on stderr, check --format=json|sarif documents on
# stdout, atomic and deterministic compile, dump, test (pass, fail,
# coverage), explain, fmt. Run by `make check` from the build directory.
set -u
srcdir=${srcdir:-.}
GWC=${GWC:-./gwc}
[ -x "$GWC" ] || { echo "gwc binary not found at $GWC" >&2; exit 99; }
T=$(mktemp -d "${TMPDIR:-/tmp}/test_gwc.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM

n=0
failed=0
pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; failed=1; }

# run CMD..., remember stdout/stderr/exit status
run() {
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
}
want_rc() {  # want_rc N description
	if [ "$rc" -eq "$1" ]; then pass "$2"; else
		fail "$2 (exit $rc, wanted $1)"; sed 's/^/    stderr: /' "$T/err"; sed 's/^/    stdout: /' "$T/out"
	fi
}
has() {  # has FILE TEXT description
	if grep -qF -- "$2" "$1"; then pass "$3"; else
		fail "$3 (no '$2' in $(basename "$1"))"; sed 's/^/    | /' "$1"
	fi
}
hasnt() {
	if grep -qF -- "$2" "$1"; then fail "$3 ('$2' found)"; sed 's/^/    | /' "$1"; else pass "$3"; fi
}

mkdir -p "$T/r"
cat >"$T/r/small.gwr" <<'EOF'
upstream app {
    server 127.0.0.1:9001;
}

route health {
    match path == "/healthz";
    respond 200 "ok";
}

route api {
    match host == "api.example.com" and path ^= "/v1/" and method in (GET, POST);
    proxy app;
}

route canary {
    match path ^= "/beta/" and header("X-Canary") == "1";
    proxy app;
}

route old {
    match path ~ "^/old/(.*)$";
    redirect 301 "/new/$1";
}

route internal {
    match client_ip in 10.0.0.0/8 and path == "/internal";
    respond 204;
}
EOF
cat >"$T/r/cases.yaml" <<'EOF'
- name: health
  request: {path: /healthz}
  expect: {route: health, status: 200}
- name: api read
  request: {method: GET, host: api.example.com, path: "/v1/items?x=1"}
  expect: {route: api, upstream: app}
- name: canary header
  request: {path: /beta/x, headers: {x-canary: "1"}}
  expect: {route: canary, upstream: app}
- name: old redirect
  request: {path: /old/a/b}
  expect: {route: old, status: 301, location: /new/a/b}
- name: nothing
  request: {method: DELETE, host: api.example.com, path: /v1/items}
  expect: {route: none, status: 404}
EOF
cat >"$T/r/failing.yaml" <<'EOF'
- name: wrong route on purpose
  request: {path: /healthz}
  expect: {route: api}
- name: wrong location on purpose
  request: {path: /old/z}
  expect: {location: /elsewhere/z}
EOF
cat >"$T/r/warn.gwr" <<'EOF'
upstream unused { server 127.0.0.1:1; }
route all { match any; respond 404; }
EOF
cat >"$T/r/err.gwr" <<'EOF'
route r {
    match any;
    rate_limit fast;
    respond 200;
}
EOF

# ---------------------------------------------------------------- basics
run "$GWC" --version;              want_rc 0 "--version exits 0"
has "$T/out" "gwc" "--version names gwc"
run "$GWC" --help;                 want_rc 0 "--help exits 0"
has "$T/out" "explain" "--help lists explain"
run "$GWC";                        want_rc 2 "no command is a usage error"
run "$GWC" frobnicate;             want_rc 2 "unknown command is a usage error"
run "$GWC" compile;                want_rc 2 "compile without a file is a usage error"
run "$GWC" compile "$T/r/nope.gwr"; want_rc 2 "compile of a missing file is an I/O error"
run "$GWC" check --format=xml "$T/r/small.gwr"; want_rc 2 "unknown --format is a usage error"

# ----------------------------------------------------------------- check
run "$GWC" check "$T/r/small.gwr"; want_rc 0 "check of a clean file exits 0"
[ -s "$T/err" ] && fail "clean check is silent" || pass "clean check is silent"
run "$GWC" check "$T/r/warn.gwr";  want_rc 0 "warnings alone exit 0"
has "$T/err" "warn.gwr:1:10: warning: upstream 'unused' is never used by a proxy [-Wunused-upstream]" "warning text, GCC style"
run "$GWC" check --strict "$T/r/warn.gwr"; want_rc 1 "--strict turns warnings into failure"
run "$GWC" check "$T/r/err.gwr";   want_rc 1 "errors exit 1"
has "$T/err" "err.gwr:3:16: error: rate_limit expects a rate like 100r/s, got identifier 'fast'" "error with file:line:col"
has "$T/err" "    rate_limit fast;" "source line under the error"
has "$T/err" "               ^~~~" "caret under the offending token"
run "$GWC" check "$T/r/small.gwr" "$T/r/err.gwr"; want_rc 1 "check of several files fails if one does"

run "$GWC" check --format=json "$T/r/err.gwr" "$T/r/warn.gwr"; want_rc 1 "check --format=json exits 1 on errors"
has "$T/out" '"diagnostics"' "json document on stdout"
if command -v python3 >/dev/null 2>&1; then
	if python3 -m json.tool "$T/out" >/dev/null 2>&1; then pass "json is valid JSON"; else fail "json is valid JSON"; cat "$T/out"; fi
	run "$GWC" check --format=sarif --strict "$T/r/warn.gwr"; want_rc 1 "sarif + strict exits 1 on a warning"
	if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["version"]=="2.1.0", d["version"]; assert d["runs"][0]["results"]' "$T/out" 2>"$T/py"; then
		pass "sarif is JSON with version 2.1.0 and results"
	else
		fail "sarif is JSON with version 2.1.0 and results"; cat "$T/py" "$T/out"
	fi
else
	pass "json validation skipped (no python3)"
	pass "sarif validation skipped (no python3)"
fi

# --------------------------------------------------------------- compile
run "$GWC" compile "$T/r/small.gwr"; want_rc 0 "compile exits 0"
[ -s "$T/r/small.gwb" ] && pass "default output is RULES.gwb" || fail "default output is RULES.gwb"
leftover=$(ls -A "$T/r" | grep -v -e '^small\.gw[rb]$' -e '\.yaml$' -e '^warn\.gwr$' -e '^err\.gwr$')
[ -z "$leftover" ] && pass "no temporary file left behind" || fail "no temporary file left behind: $leftover"
run "$GWC" compile "$T/r/small.gwr" -o "$T/again.gwb"; want_rc 0 "compile -o exits 0"
cmp -s "$T/r/small.gwb" "$T/again.gwb" && pass "same input, byte-identical output" || fail "same input, byte-identical output"
cp "$T/r/small.gwb" "$T/before.gwb"
run "$GWC" compile "$T/r/err.gwr" -o "$T/r/small.gwb"; want_rc 1 "compile of a bad file exits 1"
cmp -s "$T/r/small.gwb" "$T/before.gwb" && pass "a failed compile leaves the old table" || fail "a failed compile leaves the old table"
run "$GWC" compile "$T/r/small.gwr" -o "$T/no/such/dir/x.gwb"; want_rc 2 "unwritable output is an I/O error"

# ------------------------------------------------------------------ dump
run "$GWC" dump "$T/r/small.gwb";  want_rc 0 "dump exits 0"
has "$T/out" '"canary"' "dump names the routes"
has "$T/out" 'HEADER_EQ' "dump disassembles match programs"
head -c 100 "$T/r/small.gwb" >"$T/trunc.gwb"
run "$GWC" dump "$T/trunc.gwb";    want_rc 1 "dump of a truncated table exits 1"
[ -s "$T/err" ] && pass "the loader says why" || fail "the loader says why"
run "$GWC" dump "$T/missing.gwb";  want_rc 2 "dump of a missing file is an I/O error"

# ------------------------------------------------------------------ test
run "$GWC" test "$T/r/small.gwr" "$T/r/cases.yaml"; want_rc 0 "test with passing cases exits 0"
has "$T/out" "5 passed, 0 failed" "summary line"
run "$GWC" test "$T/r/small.gwb" "$T/r/cases.yaml"; want_rc 0 "test works on a compiled table too"
run "$GWC" test "$T/r/small.gwr" "$T/r/failing.yaml"; want_rc 1 "a failing case exits 1"
has "$T/out" "FAIL: wrong route on purpose" "the failing case is named"
has "$T/out" "route:    expected api, got health" "expected vs actual route"
has "$T/out" "location: expected /elsewhere/z, got /new/z" "expected vs actual location"
has "$T/out" "0 passed, 2 failed" "summary counts failures"
run "$GWC" test "$T/r/small.gwr" "$T/r/cases.yaml" --coverage; want_rc 0 "--coverage"
has "$T/out" "coverage: 4 of 5 routes hit (80.0%)" "coverage figure"
has "$T/out" "not hit: route internal" "routes no case hit are listed"
run "$GWC" test "$T/r/small.gwr" "$T/r/cases.yaml" --min-coverage=90; want_rc 1 "--min-coverage=90 fails at 80%"
run "$GWC" test "$T/r/small.gwr" "$T/r/cases.yaml" --min-coverage=80; want_rc 0 "--min-coverage=80 passes at 80%"
printf -- '- request: {path: /x}\n  expcet: {route: a}\n' >"$T/typo.yaml"
run "$GWC" test "$T/r/small.gwr" "$T/typo.yaml"; want_rc 1 "a bad CASES.yaml exits 1"
has "$T/err" "typo.yaml:2:3: unknown key 'expcet' in a case; did you mean 'expect'?" "CASES.yaml errors have line:col"
run "$GWC" test "$T/r/small.gwr" "$T/none.yaml"; want_rc 2 "missing CASES.yaml is an I/O error"
cat >"$T/acc.gwr" <<'EOF'
route d { match path ^= "/d/"; deny 10.9.0.0/16; allow 10.0.0.0/8, ::ffff:192.168.0.0/112; deny all; respond 200 "x"; }
route r { match path ^= "/r/"; deny all; redirect 301 "/x"; }
EOF
cat >"$T/acc.yaml" <<'EOF'
- request: {path: /d/a, client_ip: 10.1.1.1}
  expect: {route: d, status: 200}
- request: {path: /d/a, client_ip: 10.9.1.1}
  expect: {route: d, status: 403}
- request: {path: /d/a, client_ip: 192.168.1.1}
  expect: {status: 200}
- request: {path: /d/a, client_ip: "::1"}
  expect: {status: 403}
- request: {path: /d/a}
  expect: {status: 200}
- request: {path: /r/a, client_ip: 1.2.3.4}
  expect: {route: r, status: 403}
EOF
run "$GWC" test "$T/acc.gwr" "$T/acc.yaml"; want_rc 0 "test evaluates allow/deny for client_ip (first match decides, 403)"
printf -- '- request: {path: /r/a, client_ip: 1.2.3.4}\n  expect: {location: /x}\n' >"$T/acc2.yaml"
run "$GWC" test "$T/acc.gwr" "$T/acc2.yaml"; want_rc 1 "a denied redirect has no location"
run "$GWC" explain "$T/acc.gwr" GET /d/a --ip 10.9.0.1; want_rc 0 "explain of a denied client"
has "$T/out" "=> route d: refused 403 by its allow/deny for 10.9.0.1" "explain says allow/deny refuses"
printf -- '- request: {path: /nope}\n  expect: {route: null, status: 404}\n- request: {path: /nope}\n  expect: {route: ~}\n' >"$T/null.yaml"
run "$GWC" test "$T/r/small.gwr" "$T/null.yaml"; want_rc 0 "route: null (or ~) expects no route, as none does"
printf -- '- request: {path: /healthz}\n  expect: {route: null}\n' >"$T/null2.yaml"
run "$GWC" test "$T/r/small.gwr" "$T/null2.yaml"; want_rc 1 "route: null fails when a route matches"
run "$GWC" test "$T/r/err.gwr" "$T/r/cases.yaml"; want_rc 1 "test of rules with errors exits 1"

# --------------------------------------------------------------- explain
run "$GWC" explain "$T/r/small.gwr" GET "http://api.example.com/v1/items?x=1"; want_rc 0 "explain exits 0"
has "$T/out" "route health (" "earlier routes are listed"
has "$T/out" ': no, PATH_EQ "/healthz" is false' "the first failing condition"
has "$T/out" "route api (" "the matching route"
has "$T/out" "small.gwr:10:1): matches" "with its file:line"
has "$T/out" "=> route api: proxy to upstream app" "what it does"
run "$GWC" explain "$T/r/small.gwr" GET /beta/x -H 'X-Canary: 1'; want_rc 0 "explain with -H"
has "$T/out" 'route api (' "api is tried"
has "$T/out" ': no, HOST_EQ "api.example.com" is false' "api fails on the host"
has "$T/out" "=> route canary: proxy to upstream app" "canary chosen by header"
run "$GWC" explain "$T/r/small.gwr" GET /internal --ip 10.2.3.4; want_rc 0 "explain with --ip"
has "$T/out" "=> route internal: respond 204" "client_ip decides"
run "$GWC" explain "$T/r/small.gwr" GET /internal --ip 192.0.2.1; want_rc 0 "explain of a miss exits 0"
has "$T/out" 'IP_IN' "the failed client_ip test is shown"
has "$T/out" "no route matches: gwd answers 404" "a miss says 404"
run "$GWC" explain "$T/r/small.gwr" GET /old/q; want_rc 0 "explain of a redirect"
has "$T/out" "redirect 301 to /new/q" "expanded location"
run "$GWC" explain "$T/r/small.gwr" GET; want_rc 2 "explain without a URL is a usage error"

# ------------------------------------------------------------------- fmt
printf 'route r{match any;respond 200;}\n' >"$T/ugly.gwr"
cp "$T/ugly.gwr" "$T/ugly.orig"
run "$GWC" fmt --check "$T/ugly.gwr"; want_rc 1 "fmt --check exits 1 when it would change"
has "$T/out" "ugly.gwr" "fmt --check names the file"
cmp -s "$T/ugly.gwr" "$T/ugly.orig" && pass "fmt --check does not write" || fail "fmt --check does not write"
run "$GWC" fmt "$T/ugly.gwr";        want_rc 0 "fmt rewrites in place"
cmp -s "$T/ugly.gwr" "$T/ugly.orig" && fail "fmt changed the file" || pass "fmt changed the file"
run "$GWC" fmt --check "$T/ugly.gwr"; want_rc 0 "formatted file passes fmt --check"
run "$GWC" check "$T/ugly.gwr";       want_rc 0 "formatted file still checks"
ls -A "$T" | grep -q '\.tmp-' && fail "fmt leaves no temporary file" || pass "fmt leaves no temporary file"

echo "1..$n"
exit $failed
