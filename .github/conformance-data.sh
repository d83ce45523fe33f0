#!/usr/bin/env bash
# Builds the conformance data directories (conformance/, conformance-more/) that `.ci/run` and
# `npm run conformance` read from ../shared, out of a checkout of mongodb/specifications:
#   .github/conformance-data.sh <specifications checkout> <output dir>
# Each line of .github/conformance-files.txt is <set>/<spec dir>/<file>; the file comes from
# source/<spec dir>/tests/unified/<file>, unchanged.
set -euo pipefail
specs=$1
out=$2
list="$(dirname "$0")/conformance-files.txt"
n=0
while read -r line; do
  case "$line" in '' | '#'*) continue ;; esac
  set_name=${line%%/*}
  rest=${line#*/}
  spec_dir=${rest%%/*}
  file=${rest#*/}
  mkdir -p "$out/$set_name/$spec_dir"
  cp "$specs/source/$spec_dir/tests/unified/$file" "$out/$set_name/$spec_dir/$file"
  n=$((n + 1))
done <"$list"
echo "conformance data: $n files under $out"
