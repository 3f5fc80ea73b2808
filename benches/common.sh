# Shared by the benchmark scripts: `source benches/common.sh`.
TIMEFORMAT=%R
# The median of the numbers on stdin (spaces or newlines between them).
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR] = $1} END {print (a[int((NR + 1) / 2)] + a[int(NR / 2) + 1]) / 2}'; }
# `scratch NAME`: sets $out to a new folder for a benchmark's runs under
# $OUT (default /dev/shm: tmpfs), removed when the script exits.
scratch() { out="${OUT:-/dev/shm}/collapse-$1-$$"; mkdir -p "$out"; trap 'rm -rf "$out"' EXIT; }
# `round_order ROUND N`: 0 .. N-1, reversed every other round. A run right
# after another run of the same work measured faster (tmpfs pages just
# freed), which favoured whichever binary came second.
round_order() { if [ $(($1 % 2)) -eq 0 ]; then seq $(($2 - 1)) -1 0; else seq 0 $(($2 - 1)); fi; }
