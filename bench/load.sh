#!/usr/bin/env bash
# Loading benchmark (issue 14, part 2): a Hugging Face checkpoint loaded as the trainer loads it — frozen linears
# quantized to NF4 (QLoRA) or dense — with wall time, peak RSS during the load and RSS after it.
#
#   bench/load.sh MODEL_DIR [nf4|dense] [bf16|fp32]
#
# For a 7B shape without a download: ./launch.sh init-model --config <Llama-2-7B config.json> --out DIR
# (bench/README.md, "Loading at scale"). JTUNE_JAVA_OPTS adds JVM flags (e.g. -Xmx).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/java.sh"
exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector ${JTUNE_JAVA_OPTS:-} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$root/bench/target/classes:$root/bench/target/lib/*" dev.jtune.bench.LoadBench "$@"
