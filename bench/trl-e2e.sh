#!/usr/bin/env bash
# End to end against TRL (issue 14, part 4): jtune's `./launch.sh CONFIG.yml` vs TRL SFTTrainer + PEFT, the same
# ~25M Llama folder, the same 2,000 Alpaca-shaped rows, LoRA r=16 alpha=32 dropout 0.05 on all linears, fp32,
# sequence 512, micro batch 4, 30 steps, packing off and on; wall time of the whole process (start-up, loading,
# preprocessing all rows, training, saving the adapter) under /usr/bin/time -v, which also gives the peak RSS.
#
#   bench/trl-e2e.sh [--rounds R] [--steps N] [--rows ROWS] [--words-out W] [--work DIR]
#
# Rows: bench/scale/alpaca_rows.py, output ~W words (default 30: 173-298 tokens a row with init-model's small
# byte-level BPE, mean ~237, about what Stanford Alpaca rows take with a Llama tokenizer, so packing fits ~2 a row).
#
# Engines alternate (per round: no packing jtune, TRL; packing jtune, TRL), each line with the load average
# before and after; summary: best and median per engine, and TRL / jtune (above 1: jtune faster).
# TRL comes from the offline wheel mirror (/opt/pypi*/files, /opt/wheels) into bench/target/trl-venv, layered over
# target/interop-venv's torch + transformers + peft when that exists; without a trl wheel the TRL side is skipped.
# jtune's prepared-data cache is emptied before every run, so its preprocessing is timed as TRL's is.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/java.sh"

rounds=2; steps=30; nrows=2000; words=30
work="$root/bench/target/trl-e2e/run-$(date +%Y%m%d-%H%M%S)"
while (($#)); do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --rows) nrows="$2"; shift 2 ;;
    --words-out) words="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    *) echo "bench/trl-e2e.sh: unknown option $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done
mkdir -p "$work"
load() { cut -d' ' -f1-3 /proc/loadavg; }

venv="$root/bench/target/trl-venv"
py="$venv/bin/python"
if ! "$py" -c 'import trl, peft, datasets, torch, transformers' 2>/dev/null; then
  echo "making $venv (trl from the offline wheel mirror)" >&2
  links=()
  for d in /opt/pypi/files /opt/pypi-more/files /opt/wheels; do [[ -d "$d" ]] && links+=(--find-links "$d"); done
  rm -rf "$venv"; python3 -m venv "$venv"
  base="$root/target/interop-venv"
  if [[ -x "$base/bin/python" ]] && "$base/bin/python" -c 'import torch, transformers, peft' 2>/dev/null; then
    # Reuse the interop venv's torch + transformers + peft instead of a second 1 GB install.
    "$base/bin/python" -c 'import site; print(site.getsitepackages()[0])' \
      >"$("$py" -c 'import site; print(site.getsitepackages()[0])')/zz-interop-venv.pth"
  fi
  if ! "$venv/bin/pip" install -q --no-index "${links[@]}" "trl==1.13.0" peft torch transformers >"$work/pip.log" 2>&1; then
    echo "TRL side SKIPPED: trl 1.13 (or its dependencies) is not in the offline wheel mirror (see $work/pip.log)" >&2
    py=""
  fi
fi
[[ -n "$py" ]] && "$py" -c 'import trl, torch, transformers, peft; print("TRL", trl.__version__, "torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)'

model="$work/llama-25m"
"$root/launch.sh" init-model --config "$root/bench/trl/llama-25m.json" --out "$model" --seed 0
data="$work/alpaca-$nrows.jsonl"
python3 "$root/bench/scale/alpaca_rows.py" "$data" "$nrows" --words-out "$words"

: >"$work/results.tsv"
run_jtune() { # packing(true|false) name
  rm -rf "$work/prepared" "$work/out-$2"
  cat >"$work/$2.yml" <<YML
base_model: $model
datasets:
  - path: $data
    type: alpaca
val_set_size: 0
dataset_prepared_path: $work/prepared
output_dir: $work/out-$2
sequence_len: 512
sample_packing: $1
train_on_inputs: false
micro_batch_size: 4
gradient_accumulation_steps: 1
max_steps: $steps
optimizer: adamw_torch
learning_rate: 0.0001
lr_scheduler: cosine
warmup_steps: 0
weight_decay: 0.0
max_grad_norm: 1.0
adapter: lora
lora_r: 16
lora_alpha: 32
lora_dropout: 0.05
lora_target_linear: true
gradient_checkpointing: false
logging_steps: 10
seed: 1
YML
  /usr/bin/time -v -o "$work/$2.time" "$root/launch.sh" "$work/$2.yml" >"$work/$2.log" 2>&1
}
run_trl() { # packing(true|false) name
  rm -rf "$work/out-$2"
  local pk=(); [[ "$1" == true ]] && pk=(--packing)
  env -u LD_PRELOAD /usr/bin/time -v -o "$work/$2.time" "$py" "$root/bench/trl/sft_trl.py" --model "$model" --data "$data" \
    --out "$work/out-$2" --seq 512 --batch 4 --steps "$steps" --threads 2 "${pk[@]}" >"$work/$2.log" 2>&1
}
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$1"; }
peak() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$1"; }

for ((r = 1; r <= rounds; r++)); do
  for packing in false true; do
    for engine in jtune trl; do
      [[ "$engine" == trl && -z "$py" ]] && continue
      name="r$r-$engine-$([[ $packing == true ]] && echo packed || echo unpacked)"
      l0="$(load)"
      if "run_$engine" "$packing" "$name"; then status=ok; else status="failed (see $work/$name.log)"; fi
      l1="$(load)"
      w="$(wall "$work/$name.time")"; pk="$(peak "$work/$name.time")"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$engine" "$packing" "$w" "$pk" "$l0" "$l1" "$status" >>"$work/results.tsv"
      printf 'round %d  %-5s packing=%-5s  %6.1f s  peak RSS %5s MB  load %s -> %s  %s\n' "$r" "$engine" "$packing" "$w" "$pk" "$l0" "$l1" "$status"
      # Each side's final loss, to see both trained (not compared: the data order and masking details differ).
      if [[ "$engine" == jtune ]]; then grep -E "^(train loss|packing efficiency|rows  )" "$work/$name.log" | sed 's/^/    /' || true
      else grep -E '^\{"engine": "trl"' "$work/$name.log" | sed 's/^/    /' || true; fi
    done
  done
done

python3 - "$work/results.tsv" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print("\n| packing | engine | runs (s) | best s | median s | peak RSS MB | load average before -> after |")
print("|---|---|---|---:|---:|---:|---|")
best = {}
for packing in ("false", "true"):
    for engine in ("jtune", "trl"):
        rs = [r for r in rows if r[1] == engine and r[2] == packing and r[7] == "ok"]
        if not rs:
            continue
        ws = [float(r[3]) for r in rs]
        best[packing, engine] = (min(ws), statistics.median(ws))
        print(f"| {'on' if packing == 'true' else 'off'} | {engine} | {', '.join(f'{w:.1f}' for w in ws)} "
              f"| {min(ws):.1f} | {statistics.median(ws):.1f} | {', '.join(r[4] for r in rs)} "
              f"| {'; '.join(r[5] + ' -> ' + r[6] for r in rs)} |")
print()
for packing, target in (("false", 1.0), ("true", 1.2)):
    if (packing, "jtune") in best and (packing, "trl") in best:
        j, t = best[packing, "jtune"], best[packing, "trl"]
        b, m = t[0] / j[0], t[1] / j[1]
        print(f"packing {'on ' if packing == 'true' else 'off'}: TRL / jtune wall time, best {b:.2f}x, median {m:.2f}x "
              f"(target >= {target}x: {'met' if b >= target else 'missed'} best to best)")
PY
echo "(work directory: $work)"
