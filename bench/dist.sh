#!/usr/bin/env bash
# Distributed benchmark (issue 5, part 6): 1 -> 2 process scaling of TrainStepBench's LoRA train step (each rank
# its own JVM on the TCP store + ring, Trainer.run), and per-rank memory for DP vs FSDP with 2 ranks.
#
#   bench/dist.sh [--rounds R] [--steps N] [--warmup W] [--skip-memory]
#
# Not part of `mvn verify`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/java.sh"
exec "$JAVA_HOME/bin/java" -Xss4m --enable-native-access=ALL-UNNAMED ${JTUNE_JAVA_OPTS:-} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$root/bench/target/classes:$root/bench/target/lib/*" dev.jtune.bench.DistBench "$@"
