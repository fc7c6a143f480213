#!/usr/bin/env bash
# The chunked head + loss against the whole logits (HeadChunkBench): peak RSS and step time of one training step of a
# 2-layer, hidden-256 model with Llama 3's 128,256-token vocabulary, every token trained; each run a fresh JVM, the two
# paths alternating (CHUNKS="0 -1 520": also 520 tokens a chunk). bench/head-chunk.sh [DTYPE (bf16)] [TRAIN: decoder|all (decoder)] [TOKENS... (2048 8192)]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/java.sh"
dtype="${1:-bf16}"; train="${2:-decoder}"; sizes=("${@:3}")
[[ ${#sizes[@]} -eq 0 ]] && sizes=(2048 8192)
echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) commit $(git -C "$root" rev-parse --short HEAD)"
for tokens in "${sizes[@]}"; do
  for chunk in ${CHUNKS:-0 -1}; do
    "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector ${JTUNE_JAVA_OPTS:-} \
      -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
      -cp "$root/bench/target/classes:$root/bench/target/lib/*" dev.jtune.trainer.train.HeadChunkBench \
      "$tokens" "$chunk" "$dtype" "$train" 2>&1 | grep -v "^WARNING\|CudaUtils\|^SLF4J"
  done
done
