#!/bin/sh
# test_cli_conformance.sh — black-box audit of gwc against the design
# (interfaces.md "gwc", gwr-language.md §2, §5, §6): the design's own rule
# file and CASES.yaml verbatim, exit codes 0/1/2 of every subcommand, the
# diagnostic format, json/sarif on stdout. Each check quotes the design.
set -u
GWC=${GWC:-./gwc}
[ -x "$GWC" ] || { echo "gwc binary not found at $GWC" >&2; exit 99; }
T=$(mktemp -d "${TMPDIR:-/tmp}/test_cli_conf.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
GWC=$(cd "$(dirname "$GWC")" && pwd)/$(basename "$GWC")
cd "$T" || exit 99

n=0
failed=0
pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; failed=1; }
run() { "$@" >out 2>err; rc=$?; }
want_rc() {
	if [ "$rc" -eq "$1" ]; then pass "$2"; else
		fail "$2 (exit $rc, wanted $1)"; sed 's/^/    stderr: /' err; sed 's/^/    stdout: /' out
	fi
}
empty() { if [ -s "$1" ]; then fail "$2"; sed 's/^/    | /' "$1"; else pass "$2"; fi; }

# gwr-language.md §2, verbatim ("keep every example below compiling")
mkdir -p policies
echo 'policy extra { log sample=0.1; }' >policies/extra.gwr
printf 'k1\n' >keys.txt
cat >design.gwr <<'EOF'
include "policies/*.gwr";      # compile-time include, glob allowed, cycles are an error

upstream users {
    server 10.0.0.11:8080 weight=3;
    server 10.0.0.12:8080 max_fails=3 fail_timeout=10s;
    server 10.0.0.13:8080 backup;
    balance round_robin;          # round_robin | least_conn | ip_hash | hash(header("X-User")) | random
    keepalive 64;                 # idle upstream connections kept per worker
    connect_timeout 1s;
    read_timeout 5s;
    retries 2 on connect_error, 502, 503;   # only for idempotent methods
    health_check { path "/healthz"; interval 2s; timeout 1s; healthy 2; unhealthy 3; expect 200..399; }
    circuit_breaker { failures 5; window 10s; cooldown 30s; }
}

policy public_api {                      # a named, reusable list of plugin directives
    rate_limit 100r/s burst=50 key=client_ip;
    waf sqli xss traversal scanner;
}

route users {
    match host == "api.example.com" and path ^= "/v1/users/" and method in (GET, POST);
    use public_api;
    auth key header="X-API-Key" keys=file("keys.txt");
    rewrite path strip_prefix "/v1";
    set_header request "X-Request-Source" "gateway";
    proxy users;
}

route health {
    match path == "/healthz";
    respond 200 "ok\n" content_type="text/plain";
}

route old_docs {
    match path ~ "^/docs/v1/(.*)$";
    redirect 301 "/docs/v2/$1";
}

route fallback {
    match any;
    respond 404 "{\"error\":\"no route\"}" content_type="application/json";
}
EOF
# interfaces.md, CASES.yaml for gwc test, verbatim
cat >cases.yaml <<'EOF'
- name: users list goes to users
  request: {method: GET, host: api.example.com, path: /v1/users/42, headers: {X-Env: canary}, client_ip: 10.1.2.3}
  expect: {route: users, upstream: users}
- request: {method: GET, host: www.example.com, path: /docs/v1/a}
  expect: {route: old_docs, status: 301, location: /docs/v2/a}
EOF

# "Exit codes: 0 ok (warnings allowed unless --strict)"
run "$GWC" check design.gwr;            want_rc 0 "check: the design's example (a warning: unused policy) exits 0"
empty out "check text mode writes nothing on stdout"
run "$GWC" check --strict design.gwr;   want_rc 1 "check --strict: the warning makes it exit 1"
# "gwc compile RULES.gwr [-o OUT.gwb] # default OUT: RULES with .gwb"
run "$GWC" compile design.gwr;          want_rc 0 "compile the design's example"
[ -s design.gwb ] && pass "default output design.gwb" || fail "default output design.gwb"
# "The same input always gives byte-identical output."
run "$GWC" compile design.gwr -o again.gwb
cmp -s design.gwb again.gwb && pass "byte-identical output" || fail "byte-identical output"
# "atomic write (temporary file + rename in the same directory)": nothing left
left=$(ls -A | grep -v -e '^design\.' -e '^again\.gwb$' -e '^policies$' -e '^keys\.txt$' -e '^cases\.yaml$' -e '^out$' -e '^err$')
[ -z "$left" ] && pass "no temporary file left" || fail "temporary files left: $left"
# "gwc test RULES.gwr|TABLE.gwb CASES.yaml"
run "$GWC" test design.gwr cases.yaml;  want_rc 0 "test: the design's CASES.yaml passes on the rules"
run "$GWC" test design.gwb cases.yaml;  want_rc 0 "test: the design's CASES.yaml passes on the table"
# "test exits 1 when a case fails"
sed 's|/docs/v2/a|/docs/v2/b|' cases.yaml >fail.yaml
run "$GWC" test design.gwr fail.yaml;   want_rc 1 "test: a failing case exits 1"
grep -q 'location' out err && pass "test: the failure names location" || fail "test: the failure names location"
printf -- '- request: [oops\n' >broken.yaml
run "$GWC" test design.gwr broken.yaml; want_rc 1 "test: a broken CASES.yaml is an input error (1)"
run "$GWC" test design.gwr nonexistent.yaml; want_rc 2 "test: a missing CASES.yaml is an I/O error (2)"
run "$GWC" test design.gwr;             want_rc 2 "test: missing argument is a usage error (2)"
# dump
run "$GWC" dump design.gwb;             want_rc 0 "dump a table"
grep -q 'old_docs' out && pass "dump names the routes" || fail "dump names the routes"
head -c 100 design.gwb >trunc.gwb
run "$GWC" dump trunc.gwb;              want_rc 1 "dump: a truncated table is an input error (1)"
run "$GWC" dump nonexistent.gwb;        want_rc 2 "dump: a missing file is an I/O error (2)"
# fmt: "--check: exit 1 if it would change"
cp design.gwr f.gwr
run "$GWC" fmt --check f.gwr;           want_rc 1 "fmt --check on unformatted input exits 1"
cmp -s f.gwr design.gwr && pass "fmt --check does not rewrite" || fail "fmt --check does not rewrite"
run "$GWC" fmt f.gwr;                   want_rc 0 "fmt rewrites"
run "$GWC" fmt --check f.gwr;           want_rc 0 "fmt --check on formatted input exits 0"
run "$GWC" compile f.gwr -o f.gwb;      want_rc 0 "formatted rules still compile"
# usage / I/O: 2
run "$GWC";                             want_rc 2 "no command: 2"
run "$GWC" bogus;                       want_rc 2 "unknown command: 2"
run "$GWC" check --format=xml design.gwr; want_rc 2 "unknown format: 2"
run "$GWC" check nonexistent.gwr;       want_rc 2 "check: missing file: 2"
run "$GWC" compile design.gwr -o /nonexistent-dir/x.gwb; want_rc 2 "compile: unwritable output: 2"
run "$GWC" --version;                   want_rc 0 "--version: 0"
run "$GWC" --help;                      want_rc 0 "--help: 0"

# "Diagnostics go to stderr as FILE:LINE:COL: error|warning: MESSAGE [-Wname]
# followed by the source line and a caret"
cat >bad.gwr <<'EOF'
upstream u { server 127.0.0.1:1; }
route r {
    match path == "/x";
    proxi u;
}
EOF
run "$GWC" check bad.gwr;               want_rc 1 "errors in the input: 1"
empty out "diagnostics are not on stdout"
if sed -n 1p err | grep -qx 'bad.gwr:1:10: warning: upstream .* \[-Wunused-upstream\]' &&
   sed -n 2p err | grep -qx 'upstream u { server 127.0.0.1:1; }' &&
   sed -n 3p err | grep -qx '         ^'; then pass "warning: FILE:LINE:COL, source line, caret"
else fail "warning format"; sed 's/^/    | /' err; fi
if grep -qx "bad.gwr:4:5: error: unknown directive 'proxi'; did you mean 'proxy'? \[-Wunknown\]" err &&
   grep -qx '    proxi u;' err && grep -qx '    ^~~~~' err; then
	pass "error with did-you-mean, source line and caret"
else fail "error format"; sed 's/^/    | /' err; fi
# every diagnostic line has the shape, and a source line + caret follows it
awk '
/^[^ ]+:[0-9]+:[0-9]+: (error|warning|note): / { want = 2; next }
want == 2 { want = 1; next }
want == 1 { if ($0 !~ /^ *\^~*$/) bad = 1; want = 0; next }
{ bad = 1 }
END { exit bad || want }' err && pass "every diagnostic: header, source line, caret" ||
	{ fail "diagnostic shape"; sed 's/^/    | /' err; }
# §5: each error class reported with file:line:col (exit 1)
i=0
for src in 'route r { match any; rate_limit fast; respond 200; }' \
           'route r { match any; proxy nope; }' \
           'route r { match path ~ "a(b"; respond 200; }' \
           'route r { match client_ip in 10.0.0.0/33; respond 200; }' \
           'include "missing.gwr";' \
           'route r { match path == "/x; respond 200; }' \
           'route r { match any; respond 200;' \
           'route r { match path == "/\q"; respond 200; }' \
           'route r { match any; respond 200; respond 201; }' \
           'route r { match any; respond 200; } route r { match any; respond 200; }'; do
	i=$((i + 1))
	printf '%s\n' "$src" >e$i.gwr
	run "$GWC" check e$i.gwr
	if [ $rc -eq 1 ] && grep -q "^e$i.gwr:1:[0-9]*: error: " err; then pass "§5 error $i: $src"
	else fail "§5 error $i ($rc): $src"; sed 's/^/    | /' err; fi
done
printf 'include "cyc.gwr";\n' >cyc.gwr
run "$GWC" check cyc.gwr
[ $rc -eq 1 ] && grep -q '^cyc.gwr:1:9: error: include cycle' err && pass "§5 include cycle" || fail "§5 include cycle"
# invalid regex: "PCRE2's own message and offset"
run "$GWC" check e3.gwr
grep -q 'missing closing parenthesis (at offset 3)' err && pass "regex: PCRE2 message and offset" ||
	{ fail "regex message"; sed 's/^/    | /' err; }

# "check --format=json|sarif writes the document to stdout"
run "$GWC" check --format=json bad.gwr; want_rc 1 "json: exit 1 for errors"
python3 -c 'import json,sys; d=json.load(open("out")); assert d["errors"]==1 and d["warnings"]==1, d' 2>/dev/null &&
	pass "json document on stdout (1 error: the misspelt action is not also 'no action'; 1 warning)" || { fail "json document"; sed 's/^/    | /' out; }
run "$GWC" check --format=sarif bad.gwr; want_rc 1 "sarif: exit 1 for errors"
python3 -c 'import json; d=json.load(open("out")); assert d["version"]=="2.1.0" and len(d["runs"][0]["results"])==2, d' 2>/dev/null &&
	pass "sarif 2.1.0 document on stdout with 2 results" || { fail "sarif document"; sed 's/^/    | /' out; }

# "MESSAGE [-Wname]": lexer/syntax errors, CIDR, includes and escapes
# carry a class too (JSON "name", SARIF ruleId)
for i in 4 5 6 8; do
	run "$GWC" check e$i.gwr
	grep -q '^e'$i'.gwr:1:[0-9]*: error: .* \[-W[a-z-]*\]$' err && pass "[-Wname] on e$i" ||
		{ fail "[-Wname] on e$i"; sed -n 1p err | sed 's/^/    | /'; }
done

echo "1..$n"
exit $failed
