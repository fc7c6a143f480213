#!/usr/bin/env bash
# NF4 dequantization speed (issue 14, part 5): bench/dequant.sh [TOKENS] [REPEATS]; see DequantBench.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/java.sh"
exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector ${JTUNE_JAVA_OPTS:-} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$root/bench/target/classes:$root/bench/target/lib/*" dev.jtune.bench.DequantBench "$@"
