#!/usr/bin/env bash
# Bytes one decoder layer keeps for backward, part by part (issue 14): bench/activations.sh CONFIG [SEQ] (a config.json or its folder);
# see ActivationMemoryBench. E.g. bench/activations.sh bench/scale/tinyllama-1.1b.json 512
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/java.sh"
exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector ${JTUNE_JAVA_OPTS:-} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$root/bench/target/classes:$root/bench/target/lib/*" dev.jtune.bench.ActivationMemoryBench "$@"
