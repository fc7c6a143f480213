#!/usr/bin/env bash
# Train-step benchmark (issue 4): jtune LoRA / QLoRA vs plain-PyTorch eager on a ~20M-parameter Llama,
# batch 4 x sequence_len 256, fp32; then peak memory (QLoRA vs LoRA, with / without gradient checkpointing).
#
#   bench/train-step.sh [--rounds R] [--steps N] [--warmup W] [--skip-memory] [--optimize-graphs]
#
# PyTorch: $JTUNE_BENCH_PYTHON, else target/interop-venv/bin/python (tools/interop/check.sh makes it), else a
# venv made once in bench/target/torch-venv from the offline wheel mirror. Without torch >= 2.0 the PyTorch
# rows are left out. Not part of `mvn verify`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/java.sh"

has_torch2() { "$1" -c 'import sys, torch; sys.exit(0 if int(torch.__version__.split(".")[0]) >= 2 else 1)' 2>/dev/null; }
py="${JTUNE_BENCH_PYTHON:-}"
if [[ -z "$py" ]]; then
  for c in "$root/target/interop-venv/bin/python" "$root/bench/target/torch-venv/bin/python"; do
    if [[ -x "$c" ]] && has_torch2 "$c"; then py="$c"; break; fi
  done
fi
if [[ -z "$py" ]]; then
  venv="$root/bench/target/torch-venv"
  echo "making $venv (torch from the offline wheel mirror)" >&2
  links=()
  for d in /opt/pypi/files /opt/pypi-more/files /opt/wheels; do [[ -d "$d" ]] && links+=(--find-links "$d"); done
  if python3 -m venv "$venv" >&2 && "$venv/bin/pip" install -q --no-index "${links[@]}" torch >&2; then
    py="$venv/bin/python"
  fi
fi
pyargs=()
if [[ -n "$py" ]] && has_torch2 "$py"; then
  pyargs=(--python "$py" --script "$root/bench/pytorch/lora_step.py")
else
  echo "no Python with torch >= 2.0 (scaled_dot_product_attention): PyTorch rows left out" >&2
fi
exec "$JAVA_HOME/bin/java" -Xss4m --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector ${JTUNE_JAVA_OPTS:-} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$root/bench/target/classes:$root/bench/target/lib/*" dev.jtune.bench.TrainStepBench "${pyargs[@]}" "$@"
