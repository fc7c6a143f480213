#!/usr/bin/env bash
# One AdamW step per optimizer variant on a 7B-sized projection (issue 12): bench/optim.sh [ROWS] [REPEATS]; see OptimizerStepBench.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/java.sh"
exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector ${JTUNE_JAVA_OPTS:-} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$root/bench/target/classes:$root/bench/target/lib/*" dev.jtune.bench.OptimizerStepBench "$@"
