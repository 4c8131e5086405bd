#!/bin/sh
# Install every Debian package gw needs to build, test and benchmark.
# Idempotent; used by quickstart.sh and .ci/run. Needs root (or sudo).
set -e
PKGS="build-essential autoconf automake libtool pkg-config re2c \
 libyaml-dev libmicrohttpd-dev libcurl4-openssl-dev libpcre2-dev check \
 libhiredis-dev libjansson-dev libssl-dev libcrypt-dev libgnutls28-dev \
 clang curl ca-certificates redis-server python3 openssl procps iproute2 psmisc chromium groff-base man-db logrotate git"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
# the tests start their own redis-server on a private port
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
