#!/usr/bin/env python3
"""Expected samples and packed rows of Axolotl's `pretraining_dataset` path, for jtune's PretrainPackingTest.

    python3 -m venv target/tok022 && target/tok022/bin/pip install --no-index --no-deps \
        /opt/pypi/files/tokenizers-0.22.2-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
    TOKENIZERS_PYTHON=target/tok022/bin/python /work/main/target/interop-venv/bin/python \
        tools/reference/axolotl_pretrain_expected.py data/target/published-tokenizers \
        > data/src/test/resources/pretrain/expected.json

Axolotl 067b021 pins tokenizers==0.22.2 (pyproject.toml) and transformers==5.14.1. The windows depend on the
tokenizers version: 0.23.2 (what transformers 5.18 needs) keeps no overflowing windows behind a ByteLevel
post-processor (Qwen, Llama 3: one window per text), 0.22.2 keeps them all. So transformers 5.18 loads each
tokenizer (the backend it builds, e.g. its rebuilt Llama tokenizer), and its tokenizer.json is then truncated by
tokenizers 0.22.2 in TOKENIZERS_PYTHON exactly as transformers' __call__ asks the backend to
(enable_truncation(max_length, stride), encode with special tokens, the encoding and its overflowing ones).

TOKENIZERS_DIR holds the npm-published tokenizers the data tests fetch (data/src/test/resources/fetch-tokenizers.sh).

Restated from Axolotl 067b021c8b87a9e5e380b9173c704cf7340e30f5 (Axolotl itself needs a GPU stack to import):
- prompt_strategies/pretrain.py PretrainTokenizationStrategy._tokenize: transformers' tokenizer(text,
  truncation=True, max_length=sequence_len - 1, add_special_tokens=True, return_overflowing_tokens=True,
  stride=min(256, (sequence_len - 1) // 2)); every window gets EOS appended; labels are the ids (the collator
  copies input_ids when no labels column exists).
- utils/trainer.py process_pretraining_datasets_for_packing: filter_sequences_by_length keeps 2 <= len <= sequence_len;
  add_position_ids gives each window 0..len-1 (pretrain_multipack_attn: true).
- utils/samplers/multipack.py pack_group: first fit in the sampler's order (no sorting), a bin holds at most
  bin_size (sample_packing_bin_size, 200) samples and micro_batch_size * sequence_len tokens. Axolotl draws that
  order with torch's RandomSampler; here the order is the identity, so the packing step is compared for a given
  order (jtune draws its own seeded order; README says so).
- utils/collators/batching.py PretrainingBatchSamplerDataCollatorForSeq2Seq: a bin's windows concatenated (ids,
  labels, position ids), then padded to a multiple of sequence_len (pad id, label -100, position ids 0..).
"""
import json
import os
import sys

from transformers import AutoTokenizer

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    " ".join(f"word{i} and more text number {i}." for i in range(60)),  # several windows
    "",  # an empty text: BOS/EOS only, dropped below 2 tokens where the tokenizer adds no BOS
    "Short.",
    "Über Flüsse und Hügel: 漢字 and emoji 🙂 mixed in. " * 7,
    "A last line\nwith a newline and    spaces.",
]
SEQUENCE_LEN = 32
MICRO_BATCH_SIZE = 2
BIN_SIZE = 3  # small, so the cap on samples per bin shows


WINDOWS = r"""
import json, sys
from tokenizers import Tokenizer
assert __import__("tokenizers").__version__ == "0.22.2", "Axolotl 067b021 pins tokenizers 0.22.2"
path, max_length, stride = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tk = Tokenizer.from_file(path)
tk.enable_truncation(max_length, stride=stride, strategy="longest_first", direction="right")
out = []
for text in json.load(sys.stdin):
    e = tk.encode(text, add_special_tokens=True)
    out.append([e.ids] + [o.ids for o in e.overflowing])
json.dump(out, sys.stdout)
"""


def all_windows(tok, texts, sequence_len):
    """PretrainTokenizationStrategy._tokenize for each text: windows of max_length=sequence_len-1, EOS appended."""
    import subprocess
    import tempfile
    stride = min(256, (sequence_len - 1) // 2)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(tok._tokenizer.to_str())
    res = subprocess.run([os.environ["TOKENIZERS_PYTHON"], "-c", WINDOWS, f.name, str(sequence_len - 1), str(stride)],
                         input=json.dumps(texts), capture_output=True, text=True, check=True)
    os.unlink(f.name)
    return [[list(seq) + [tok.eos_token_id] for seq in per_text] for per_text in json.loads(res.stdout)]


def pack_group(lengths, capacity, bin_size):
    space, bins = [], []
    for i, size in enumerate(lengths):
        for b in range(len(space)):
            if space[b] >= size and len(bins[b]) < bin_size:
                space[b] -= size
                bins[b].append(i)
                break
        else:
            space.append(capacity - size)
            bins.append([i])
    return bins


def main():
    root = sys.argv[1]
    out = {"sequence_len": SEQUENCE_LEN, "micro_batch_size": MICRO_BATCH_SIZE, "bin_size": BIN_SIZE,
           "texts": TEXTS, "tokenizers": {}}
    for name in ("llama2", "qwen3"):
        tok = AutoTokenizer.from_pretrained(os.path.join(root, name))
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        samples = []
        for per_text in all_windows(tok, TEXTS, SEQUENCE_LEN):
            for ids in per_text:
                if 2 <= len(ids) <= SEQUENCE_LEN:
                    samples.append(ids)
        capacity = MICRO_BATCH_SIZE * SEQUENCE_LEN
        rows = []
        for b in pack_group([len(s) for s in samples], capacity, BIN_SIZE):
            ids = [t for i in b for t in samples[i]]
            pos = [p for i in b for p in range(len(samples[i]))]
            labels = list(ids)
            n = -(-len(ids) // SEQUENCE_LEN) * SEQUENCE_LEN
            extra = n - len(ids)
            rows.append({"bin": b, "input_ids": ids + [pad] * extra, "labels": labels + [-100] * extra,
                         "position_ids": pos + list(range(extra))})
        out["tokenizers"][name] = {"samples": samples, "rows": rows}
    json.dump(out, sys.stdout, indent=None)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
