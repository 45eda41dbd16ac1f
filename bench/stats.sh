# Sourced by the bench scripts: the clock and the statistics of their timings.
# now: seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }
# median / fastest: of the space-separated seconds on standard input.
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
fastest() { tr ' ' '\n' | sed '/^$/d' | sort -g | head -1; }
