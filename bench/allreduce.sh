#!/usr/bin/env bash
# Collective benchmark (issue 5, part 6): all-reduce bus bandwidth of the CPU ring process group between two ranks
# on loopback, 1 MB .. 256 MB of fp32, next to this machine's memory-copy bandwidth measured in Java.
#
#   bench/allreduce.sh [--max-mb M] [--seconds S]
#
# Not part of `mvn verify`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64; do
  if [[ -n "$candidate" && -x "$candidate/bin/java" ]] && "$candidate/bin/java" -version 2>&1 | grep -q '"25'; then
    export JAVA_HOME="$candidate"; break
  fi
done
(cd "$root" && ./mvnw -q -o -B -pl bench -am -DskipTests package) >"$root/bench/build.log" 2>&1 \
  || { tail -n 40 "$root/bench/build.log" >&2; exit 1; }
rm -f "$root/bench/build.log"
export DJL_OFFLINE=true
exec "$JAVA_HOME/bin/java" -Xss4m --enable-native-access=ALL-UNNAMED \
  -cp "$root/bench/target/classes:$root/bench/target/lib/*" dev.jtune.bench.AllReduceBench "$@"
