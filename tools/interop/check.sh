#!/usr/bin/env bash
# Interoperability check: jtune against Hugging Face transformers (and PEFT) on the same checkpoints.
#   - a bf16 checkpoint written by PyTorch (model/src/test/resources/fixtures/tiny-bf16-llama), fp32 and bf16
#   - a checkpoint written by `./launch.sh init-model` (transformers must load it, tokenizer included)
#   - LoRA (tools/interop/peft_check.py): a jtune adapter in PeftModel.from_pretrained, merge-lora against
#     merge_and_unload, and an adapter saved by PEFT scored by jtune
#   - a grown vocabulary (tokens / special_tokens, tools/interop/tokenizer_edits_check.py and peft_check.py
#     grown-adapter): the output's tokenizer against Axolotl's steps in transformers, PEFT after resize
#   - every model family (fixtures/families: Qwen2, Qwen3, Mistral-Nemo, Gemma 2, Gemma 3 text and multimodal,
#     Phi-3, Llama): scores in fp32 and bf16, jtune-trained LoRA and QLoRA adapters in PEFT, merge-lora
# transformers, torch and safetensors come from this machine's local wheel mirror (pip's configured
# find-links / extra-index-url, no network); where they are absent the check says SKIPPED and exits 0.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
venv="$root/target/interop-venv"
work="$root/target/interop"
mkdir -p "$work"

links=()
for d in /opt/wheels /opt/pypi/files /opt/pypi-more/files; do [[ -d "$d" ]] && links+=(--find-links "$d"); done

if ! "$venv/bin/python" -c "import transformers, torch" >/dev/null 2>&1; then
  echo "interop: installing torch + transformers from the local wheel mirror into target/interop-venv ..."
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >"$work/pip.log" 2>&1 \
     || ! "$venv/bin/pip" install -q --no-index "${links[@]}" torch "transformers==5.18.0" safetensors >>"$work/pip.log" 2>&1; then
    echo "interop: SKIPPED — torch/transformers wheels are not available offline on this machine (see $work/pip.log)"
    exit 0
  fi
fi
py="$venv/bin/python"
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error TQDM_DISABLE=1

check() { # name model input dtype rtol
  echo "interop: $1 ($4)"
  ./launch.sh score --model "$2" --input "$3" --dtype "$4" >"$work/$1-$4.jsonl"
  "$py" tools/interop/hf_score.py "$2" "$3" "$4" "$work/$1-$4.jsonl" "$5"
}

fixture=model/src/test/resources/fixtures/tiny-bf16-llama
check pytorch-bf16-checkpoint "$fixture" "$fixture/inputs.jsonl" fp32 1e-5
check pytorch-bf16-checkpoint "$fixture" "$fixture/inputs.jsonl" bf16 5e-3
./launch.sh init-model --preset tiny --out "$work/tiny" --seed 1 --force >/dev/null
check jtune-init-model "$work/tiny" configs/score-sample.jsonl fp32 1e-5
# Mistral with a sliding window shorter than the texts: transformers' own checkpoint, the window honoured by both.
rm -rf "$work/mistral-window"
"$py" tools/interop/make_mistral.py "$work/tiny" "$work/mistral-window" 4
check transformers-mistral-sliding-window "$work/mistral-window" configs/score-sample.jsonl fp32 1e-5
check transformers-mistral-sliding-window "$work/mistral-window" configs/score-sample.jsonl bf16 5e-3
echo "interop: jtune agrees with transformers"

# LoRA against PEFT: a jtune adapter in PeftModel, jtune's merge against merge_and_unload, and a PEFT adapter
# in jtune. Skipped where the peft wheel is not in the mirror.
if ! "$py" -c "import peft" >/dev/null 2>&1 \
   && ! "$venv/bin/pip" install -q --no-index "${links[@]}" peft >>"$work/pip.log" 2>&1; then
  echo "interop: LoRA vs PEFT SKIPPED — the peft wheel is not available offline (see $work/pip.log)"
  exit 0
fi
lora="$work/lora"
rm -rf "$lora" && mkdir -p "$lora"
echo "interop: LoRA adapter written by jtune, loaded by PEFT"
# The test-only RandomAdapterMain writes an adapter with non-zero B (a fresh adapter's B is zero).
./mvnw -q -B -pl lora -am test-compile >"$lora/build.log" 2>&1 || { tail -n 30 "$lora/build.log"; exit 1; }
java_home="${JAVA_HOME:-}"
[[ -x "$java_home/bin/java" ]] && "$java_home/bin/java" -version 2>&1 | grep -q '"25' || java_home=/usr/lib/jvm/temurin-25-jdk-amd64
DJL_OFFLINE=true "$java_home/bin/java" --enable-native-access=ALL-UNNAMED -Dorg.slf4j.simpleLogger.defaultLogLevel=error \
  -cp "lora/target/test-classes:trainer/target/jtune.jar:trainer/target/lib/*" \
  dev.jtune.lora.RandomAdapterMain "$work/tiny" "$lora/jtune-adapter" >"$lora/random-adapter.log" 2>&1 \
  || { cat "$lora/random-adapter.log"; exit 1; }
sample=configs/score-sample.jsonl
./launch.sh score --model "$work/tiny" --lora-model-dir "$lora/jtune-adapter" --input "$sample" >"$lora/jtune-adapter.jsonl"
printf 'base_model: %s\ndatasets:\n  - path: unused.jsonl\n    type: completion\noutput_dir: %s\n' \
  "$work/tiny" "$lora/out" >"$lora/merge.yml"
./launch.sh merge-lora "$lora/merge.yml" --lora-model-dir "$lora/jtune-adapter" --out "$lora/jtune-merged" >/dev/null
./launch.sh score --model "$lora/jtune-merged" --input "$sample" >"$lora/jtune-merged.jsonl"
"$py" tools/interop/peft_check.py jtune-adapter "$work/tiny" "$lora/jtune-adapter" "$lora/jtune-merged" "$sample" \
  "$lora/jtune-adapter.jsonl" "$lora/jtune-merged.jsonl"
echo "interop: LoRA adapter written by PEFT, scored by jtune"
"$py" tools/interop/peft_check.py peft-adapter "$work/tiny" "$lora/peft-adapter" "$sample" "$lora/peft-expected.jsonl"
./launch.sh score --model "$work/tiny" --lora-model-dir "$lora/peft-adapter" --input "$sample" >"$lora/jtune-on-peft.jsonl"
"$py" tools/interop/hf_score.py "$work/tiny" "$sample" fp32 "$lora/jtune-on-peft.jsonl" 1e-5 >/dev/null 2>&1 \
  && { echo "interop: the PEFT adapter changed nothing (jtune matched the base model)"; exit 1; }
"$py" - "$lora/peft-expected.jsonl" "$lora/jtune-on-peft.jsonl" <<'PY'
import json, sys
sys.path.insert(0, "tools/interop")
from hf_score import compare
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sys.exit(compare(rows, sys.argv[2], 1e-5))
PY
echo "interop: jtune LoRA agrees with PEFT"

# LoRA with trainable embeddings and head over a bf16 base (Chinese-LLaMA-Alpaca's shape of run): trained by
# jtune in bf16, the adapter (lora_A/B plus modules_to_save copies of embed_tokens and lm_head) loads in PEFT and
# scores alike; its merge equals PEFT's merge_and_unload.
echo "interop: LoRA + trainable embed_tokens/lm_head trained in bf16 by jtune, loaded by PEFT"
emb="$work/embeddings-bf16"
rm -rf "$emb" && mkdir -p "$emb"
cat >"$emb/train.yml" <<YML
base_model: $work/tiny
datasets:
  - path: configs/quickstart/last-word.jsonl
    type: alpaca
dataset_prepared_path: $emb/prepared
output_dir: $emb/out
sequence_len: 256
sample_packing: true
micro_batch_size: 8
max_steps: 4
learning_rate: 0.003
bf16: true
adapter: lora
lora_r: 8
lora_alpha: 16
lora_target_modules: [q_proj, k_proj, v_proj, o_proj]
lora_modules_to_save: [embed_tokens, lm_head]
seed: 3
YML
./launch.sh "$emb/train.yml" >"$emb/train.log" 2>&1 || { tail -n 30 "$emb/train.log"; exit 1; }
./launch.sh score --model "$work/tiny" --lora-model-dir "$emb/out" --input "$sample" >"$emb/adapter.jsonl"
./launch.sh score --model "$work/tiny" --lora-model-dir "$emb/out" --input "$sample" --dtype bf16 >/dev/null
./launch.sh merge-lora "$emb/train.yml" --out "$emb/merged" >/dev/null
./launch.sh score --model "$emb/merged" --input "$sample" >"$emb/merged.jsonl"
"$py" tools/interop/peft_check.py jtune-adapter "$work/tiny" "$emb/out" "$emb/merged" "$sample" \
  "$emb/adapter.jsonl" "$emb/merged.jsonl"
echo "interop: the bf16-trained adapter with embeddings agrees with PEFT"

# Growing the vocabulary (Chinese-LLaMA-Alpaca's shape of run): new Chinese tokens and a new [PAD] special token
# (Axolotl's tokens / special_tokens), LoRA + trainable embed_tokens/lm_head, bf16. The output folder's tokenizer
# loads in transformers with jtune's ids, PEFT loads the adapter after resize_token_embeddings(len(tokenizer)) and
# scores alike, merge-lora equals merge_and_unload, transformers loads the merged model with the grown vocabulary.
echo "interop: growing the vocabulary (new tokens + [PAD], LoRA + embed_tokens/lm_head, bf16), loaded by PEFT"
voc="$work/vocab-growth"
rm -rf "$voc" && mkdir -p "$voc"
"$py" - "$voc" <<'PY'
import json, sys
pairs = [("Greet in Chinese", "你好"), ("Say world in Chinese", "世界"), ("Greet the world in Chinese", "你好世界"),
         ("Say thanks in Chinese", "谢谢")]
with open(sys.argv[1] + "/zh.jsonl", "w", encoding="utf-8") as f:
    for i in range(48):
        f.write(json.dumps({"instruction": pairs[i % 4][0], "input": "", "output": pairs[i % 4][1]}, ensure_ascii=False) + "\n")
with open(sys.argv[1] + "/score.jsonl", "w", encoding="utf-8") as f:
    for row in [{"text": "你好世界, hello 你好"}, {"prompt": "Greet in Chinese: ", "completion": "你好世界"},
                {"text": "谢谢 and plain English text"}]:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
PY
cat >"$voc/train.yml" <<YML
base_model: $work/tiny
datasets:
  - path: $voc/zh.jsonl
    type: alpaca
dataset_prepared_path: $voc/prepared
output_dir: $voc/out
sequence_len: 128
sample_packing: true
micro_batch_size: 8
max_steps: 4
learning_rate: 0.003
bf16: true
adapter: lora
lora_r: 8
lora_alpha: 16
lora_target_modules: [q_proj, k_proj, v_proj, o_proj]
lora_modules_to_save: [embed_tokens, lm_head]
tokens: ["你好", "世界", "谢谢"]
special_tokens:
  pad_token: "[PAD]"
seed: 3
YML
./launch.sh "$voc/train.yml" >"$voc/train.log" 2>&1 || { tail -n 30 "$voc/train.log"; exit 1; }
grep -q "embedding and head grown to" "$voc/train.log" || { echo "interop: the vocabulary did not grow"; exit 1; }
"$py" tools/interop/tokenizer_edits_check.py "$work/tiny" "$voc/out" '["你好", "世界", "谢谢"]' '{"pad_token": "[PAD]"}' \
  "你好世界, hello 你好" "[PAD] 谢谢 the end" "plain English, with punctuation!"
./launch.sh score --model "$work/tiny" --lora-model-dir "$voc/out" --input "$voc/score.jsonl" >"$voc/adapter.jsonl"
./launch.sh merge-lora "$voc/train.yml" --out "$voc/merged" >/dev/null
./launch.sh score --model "$voc/merged" --input "$voc/score.jsonl" >"$voc/merged.jsonl"
"$py" tools/interop/peft_check.py grown-adapter "$work/tiny" "$voc/out" "$voc/merged" "$voc/score.jsonl" \
  "$voc/adapter.jsonl" "$voc/merged.jsonl" '["你好", "世界", "谢谢"]' "[PAD]"
echo "interop: the adapter with a grown vocabulary agrees with PEFT and transformers"

# The quickstart's own result (README's main command runs before this check in CI): the adapter it trained
# loads in PEFT with every tensor, scores as jtune scores it, and its merged model equals PEFT's merge.
if [[ -f outputs/quickstart/adapter_config.json && -f out/tiny-llama/config.json && -d outputs/quickstart/merged ]]; then
  echo "interop: the quickstart's trained adapter (outputs/quickstart), loaded by PEFT"
  qs="$work/quickstart"
  mkdir -p "$qs"
  ./launch.sh score --model out/tiny-llama --lora-model-dir outputs/quickstart --input "$sample" >"$qs/adapter.jsonl"
  ./launch.sh score --model outputs/quickstart/merged --input "$sample" >"$qs/merged.jsonl"
  "$py" tools/interop/peft_check.py jtune-adapter out/tiny-llama outputs/quickstart outputs/quickstart/merged "$sample" \
    "$qs/adapter.jsonl" "$qs/merged.jsonl"
  echo "interop: the quickstart's adapter and merged model agree with PEFT"
fi

# Every model family jtune implements (model/src/test/resources/fixtures/families, written by transformers 5.18;
# tools/reference/FAMILIES.md): jtune's score against transformers in fp32 and bf16, a LoRA adapter on every linear
# projection trained by jtune (Phi-3's fused qkv_proj/gate_up_proj, Qwen2's biases, Gemma's tied head, Gemma 3's
# multimodal checkpoint) loaded by PeftModel.from_pretrained and scoring alike, merge-lora against
# merge_and_unload, and a QLoRA adapter (trained over the NF4 base) and a LoRA adapter trained over the LLM.int8 base
# (load_in_8bit) in PEFT. bitsandbytes has no CPU build here, so PEFT applies them to the dense base, and jtune
# scores them over the same dense base. jtune writes
# everything first; one Python process (peft_check.py families) then checks it all, torch's import being the
# slow part.
echo "interop: every model family: scores, LoRA, QLoRA and 8-bit-base LoRA adapters against transformers and PEFT"
families=model/src/test/resources/fixtures/families
cases=(qwen2 qwen3 mistral-nemo gemma2 gemma3-text gemma3-conditional phi3 llama-rope-params)
fam="$work/families"
rm -rf "$fam"
for case in "${cases[@]}"; do
  base="$families/$case" out="$fam/$case"
  mkdir -p "$out"
  for dtype in fp32 bf16; do
    ./launch.sh score --model "$base" --input "$base/inputs.jsonl" --dtype "$dtype" >"$out/$dtype.jsonl"
  done
  for adapter in lora qlora int8; do
    # A high learning rate for a few steps, so that B is far from zero; short rows (the fixtures know 256 positions).
    { printf 'base_model: %s\ndatasets:\n  - path: tools/interop/family-train.jsonl\n    type: completion\n' "$base"
      printf 'dataset_prepared_path: %s\noutput_dir: %s\n' "$out/$adapter-prepared" "$out/$adapter"
      printf 'sequence_len: 128\nmicro_batch_size: 8\nmax_steps: 3\nlearning_rate: 0.01\nseed: 5\n'
      printf 'adapter: %s\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\n' "${adapter/int8/lora}"
      if [[ $adapter == qlora ]]; then printf 'load_in_4bit: true\n'; fi
      if [[ $adapter == int8 ]]; then printf 'load_in_8bit: true\n'; fi; } >"$out/$adapter.yml"
    ./launch.sh "$out/$adapter.yml" >"$out/$adapter-train.log" 2>&1 \
      || { echo "interop: $case: jtune could not train the $adapter adapter"; tail -n 30 "$out/$adapter-train.log"; exit 1; }
    ./launch.sh score --model "$base" --lora-model-dir "$out/$adapter" --input "$base/inputs.jsonl" >"$out/$adapter.jsonl"
  done
  ./launch.sh merge-lora "$out/lora.yml" --out "$out/lora-merged" >/dev/null
  ./launch.sh score --model "$out/lora-merged" --input "$base/inputs.jsonl" >"$out/lora-merged.jsonl"
done
# The other way, where names differ most: a PEFT adapter for the multimodal Gemma 3 whose list target_modules wrap
# the vision tower's q/k/v_proj too (legacy file names vision_tower.*, modules model.vision_tower.*), merged by jtune.
mm="$fam/gemma3-conditional/peft-adapter"
"$py" tools/interop/peft_check.py peft-multimodal "$families/gemma3-conditional" "$mm"
./launch.sh merge-lora "$fam/gemma3-conditional/lora.yml" --lora-model-dir "$mm/adapter" --out "$mm/jtune-merged" >/dev/null
"$py" tools/interop/peft_check.py families "$families" "$fam" "${cases[@]}"
echo "interop: every model family agrees with transformers and PEFT"
