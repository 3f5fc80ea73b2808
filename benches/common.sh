# Shared by the benchmark scripts: `source benches/common.sh`.
TIMEFORMAT=%R
# The median of the numbers on stdin (spaces or newlines between them).
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR] = $1} END {print (a[int((NR + 1) / 2)] + a[int(NR / 2) + 1]) / 2}'; }
