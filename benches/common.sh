# Shared by the benchmark scripts: `source benches/common.sh`.
TIMEFORMAT=%R
# The median of the numbers on stdin (spaces or newlines between them).
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR] = $1} END {print (a[int((NR + 1) / 2)] + a[int(NR / 2) + 1]) / 2}'; }
# `scratch NAME`: sets $out to a new folder for a benchmark's runs under
# $OUT (default /dev/shm: tmpfs), removed when the script exits.
scratch() { out="${OUT:-/dev/shm}/collapse-$1-$$"; mkdir -p "$out"; trap 'rm -rf "$out"' EXIT; }
