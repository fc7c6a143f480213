#!/usr/bin/env bash
# The Rust tokenizer alone on Alpaca-shaped texts (dev.jtune.bench.TokenizerFloorBench): the floor under bench/run.sh.
#
#   bench/tokenizer-floor.sh [TOKENIZER_DIR]     (default: the published Llama-3 tokenizer run.sh uses)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/java.sh"
tok="${1:-}"
if [[ -z "$tok" ]]; then
  bash "$root/data/src/test/resources/fetch-tokenizers.sh" "$root/bench/target/tokenizers" >&2
  tok="$root/bench/target/tokenizers/llama3"
fi
export DJL_OFFLINE=true
exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector ${JTUNE_JAVA_OPTS:-} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$root/bench/target/classes:$root/bench/target/lib/*" dev.jtune.bench.TokenizerFloorBench "$tok"
