#!/bin/sh
# Quick start: install dependencies, build, compile the demo rules and run
# gwd with its built-in demo origin. Ctrl-C stops it.
set -e
cd "$(dirname "$0")"
./tools/deps.sh
[ -x configure ] || ./autogen.sh
[ -f Makefile ] || ./configure
make -j"$(nproc)"
./gwc compile examples/demo.gwr -o examples/demo.gwb
exec ./gwd --demo -c examples/demo.yaml
