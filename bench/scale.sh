#!/usr/bin/env bash
# Scale benchmark (issue 14, part 3): `./launch.sh CONFIG.yml` on checkpoints of real shapes, QLoRA and LoRA, with
# and without gradient checkpointing, next to PyTorch + PEFT (LoRA over the bf16 base) on the same folder.
#
#   bench/scale.sh [--model DIR]... [--steps N] [--seq S] [--runs LIST] [--load-kinds nf4,dense] [--no-load-bench] [--work DIR]
#
# --model    a Hugging Face Llama folder (default /tmp/b11/model); for real shapes without a download:
#            ./launch.sh init-model --config <TinyLlama-1.1B or Llama-2-7B config.json> --out DIR
# --steps    optimizer steps per run (default 3; the first is warm-up and not counted)
# --runs     comma list, in this order (alternating engines): qlora, peft, qlora-gc, peft-gc, lora, lora-gc
#            (default all; "peft*" are PyTorch + PEFT, skipped without a Python with torch, transformers, peft)
# --load-kinds      which bench/load.sh runs come first (load time and peak RSS of loading alone, bf16): nf4,dense
# --no-load-bench   none of them
#
# Every run is its own process under /usr/bin/time -v (peak RSS); micro batch 1, bf16, LoRA r=16 alpha=32 dropout
# 0.05 on all seven projections, sequence S packed and padded (pad_to_sequence_len), rows longer than S truncated
# (excess_length_strategy: truncate) so every step trains exactly S tokens. Per-step times come from the
# trainer's metrics.jsonl (logging_steps: 1), load time from the console's timestamps. Summary: bench/scale/summary.py.
# Python: $JTUNE_BENCH_PYTHON, else target/interop-venv (tools/interop/check.sh makes it). Not part of `mvn verify`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/java.sh"

models=(); steps=3; seq=512; runs="qlora,peft,qlora-gc,peft-gc,lora,lora-gc"; loadkinds=nf4,dense
work="$root/bench/target/scale/run-$(date +%Y%m%d-%H%M%S)"
while (($#)); do
  case "$1" in
    --model) models+=("$(cd "$2" && pwd)"); shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --seq) seq="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --load-kinds) loadkinds="$2"; shift 2 ;;
    --no-load-bench) loadkinds=""; shift ;;
    --work) work="$2"; shift 2 ;;
    *) echo "bench/scale.sh: unknown option $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done
((${#models[@]})) || models=(/tmp/b11/model)
mkdir -p "$work"; : >"$work/runs.txt"
load() { cut -d' ' -f1-3 /proc/loadavg; }

py="${JTUNE_BENCH_PYTHON:-$root/target/interop-venv/bin/python}"
if ! [[ -x "$py" ]] || ! "$py" -c 'import torch, transformers, peft' 2>/dev/null; then
  echo "no Python with torch + transformers + peft at $py: PyTorch + PEFT rows and the matmul roof left out" >&2
  py=""
fi
if [[ -n "$py" ]]; then
  l0="$(load)"
  env -u LD_PRELOAD "$py" "$root/bench/pytorch/matmul_roof.py" --threads 2 >"$work/roof.tmp"
  "$py" -c "import json,sys; d=json.load(open(sys.argv[1])); d['load']=sys.argv[2]+' -> '+sys.argv[3]; print(json.dumps(d))" \
    "$work/roof.tmp" "$l0" "$(load)" >"$work/roof.json"
  rm "$work/roof.tmp"; cat "$work/roof.json"
fi

data="$work/long.jsonl"
python3 "$root/bench/scale/alpaca_rows.py" "$data" 200 --words-out 250

# jtune's console with each line's epoch time in front (load time = gap before the "model:" line).
stamp() { while IFS= read -r line; do printf '%s\t%s\n' "$EPOCHREALTIME" "$line"; done; }

for model in "${models[@]}"; do
  tag="$(basename "$(dirname "$model")")-$(basename "$model")"
  if [[ -n "$loadkinds" ]]; then
    IFS=, read -ra kinds <<<"$loadkinds"
    for kind in "${kinds[@]}"; do
      echo "== load $model $kind bf16 (load average $(load))"
      "$root/bench/load.sh" "$model" "$kind" bf16 2>&1 | tee "$work/loadbench-$tag-$kind.txt"
    done
  fi
  IFS=, read -ra list <<<"$runs"
  for run in "${list[@]}"; do
    name="$tag-$run"
    gc=false; [[ "$run" == *-gc ]] && gc=true
    l0="$(load)"
    echo "== $name (load average $l0)"
    case "$run" in
      qlora|qlora-gc|lora|lora-gc)
        quant=""; adapter=lora
        [[ "$run" == qlora* ]] && { quant="load_in_4bit: true"; adapter=qlora; }
        cat >"$work/$name.yml" <<YML
base_model: $model
datasets:
  - path: $data
    type: alpaca
val_set_size: 0
dataset_prepared_path: $work/prepared
output_dir: $work/out-$name
sequence_len: $seq
sample_packing: true
pad_to_sequence_len: true
excess_length_strategy: truncate
train_on_inputs: true
micro_batch_size: 1
gradient_accumulation_steps: 1
max_steps: $steps
learning_rate: 0.0001
bf16: true
$quant
adapter: $adapter
lora_r: 16
lora_alpha: 32
lora_dropout: 0.05
lora_target_linear: true
gradient_checkpointing: $gc
logging_steps: 1
seed: 1
YML
        { printf '%s\t#start\n' "$EPOCHREALTIME"
          /usr/bin/time -v -o "$work/$name.time" "$root/launch.sh" "$work/$name.yml" 2>&1 | stamp || true
        } >"$work/$name.log"
        engine=jtune ;;
      peft|peft-gc)
        [[ -n "$py" ]] || { echo "   skipped (no torch + peft)"; continue; }
        extra=(); [[ "$gc" == true ]] && extra=(--gradient-checkpointing)
        env -u LD_PRELOAD /usr/bin/time -v -o "$work/$name.time" "$py" "$root/bench/pytorch/peft_step.py" --model "$model" \
          --data "$data" --seq "$seq" --steps "$steps" --threads 2 "${extra[@]}" >"$work/$name.json" 2>"$work/$name.err" || true
        engine=pytorch+peft ;;
      *) echo "bench/scale.sh: unknown run $run (qlora, qlora-gc, lora, lora-gc, peft, peft-gc)" >&2; exit 2 ;;
    esac
    printf '{"engine": "%s", "config": "%s", "model": "%s", "seq": %d, "dtype": "bf16", "load_before": "%s", "load_after": "%s"}\n' \
      "$engine" "$run" "$model" "$seq" "$l0" "$(load)" >"$work/$name.meta"
    echo "$name" >>"$work/runs.txt"
    grep -h -E "Maximum resident|Elapsed|Exit status" "$work/$name.time" | sed 's/^\s*/   /'
  done
done
echo
python3 "$root/bench/scale/summary.py" "$work" | tee "$work/summary.md"
echo "(work directory: $work)"
