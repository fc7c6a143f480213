#!/usr/bin/env bash
# LLM.int8 (load_in_8bit) forward speed: bench/int8.sh [TOKENS] [REPEATS] [OUT] [IN]; see Int8Bench.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/java.sh"
exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector ${JTUNE_JAVA_OPTS:-} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$root/bench/target/classes:$root/bench/target/lib/*" dev.jtune.bench.Int8Bench "$@"
