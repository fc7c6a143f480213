#!/usr/bin/env bash
# Collective benchmark (issue 5, part 6): all-reduce bus bandwidth of the CPU ring process group between two ranks
# on loopback, 1 MB .. 256 MB of fp32, next to this machine's memory-copy bandwidth measured in Java.
#
#   bench/allreduce.sh [--max-mb M] [--seconds S]
#
# Not part of `mvn verify`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/java.sh"
exec "$JAVA_HOME/bin/java" -Xss4m --enable-native-access=ALL-UNNAMED \
  -cp "$root/bench/target/classes:$root/bench/target/lib/*" dev.jtune.bench.AllReduceBench "$@"
