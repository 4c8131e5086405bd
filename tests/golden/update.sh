#!/bin/sh
# Regenerate tests/golden/*.dump after an intended change of the table
# format, the disassembler or an example. Review the diff before committing.
#
#   tests/golden/update.sh [BUILD_DIR]      (from the top of the source tree;
#                                            BUILD_DIR defaults to ".")
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-.}" && pwd)
cd "$build"
srcdir=$top exec "$top/tests/unit/test_golden.sh" --update
