"""A Mistral checkpoint written by transformers, with a sliding window shorter than the scored texts.

usage: python make_mistral.py LLAMA_DIR OUT_DIR WINDOW
Takes the shape and tokenizer of LLAMA_DIR (jtune's init-model tiny preset), builds MistralForCausalLM with
sliding_window=WINDOW and transformers' own random initialisation (seed 0), and saves it (safetensors) with the
tokenizer files. tools/interop/check.sh then scores it with jtune and transformers: the window must be honoured
by both (jtune once read Mistral as Llama and ignored it: 0.0198 nats/token off).
"""
import json
import os
import shutil
import sys

import torch
from transformers import MistralConfig, MistralForCausalLM


def main():
    src, out, window = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(os.path.join(src, "config.json")) as f:
        c = json.load(f)
    config = MistralConfig(
        vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], intermediate_size=c["intermediate_size"],
        num_hidden_layers=c["num_hidden_layers"], num_attention_heads=c["num_attention_heads"],
        num_key_value_heads=c["num_key_value_heads"], max_position_embeddings=c["max_position_embeddings"],
        rms_norm_eps=c["rms_norm_eps"], rope_theta=c.get("rope_theta", 10000.0), sliding_window=window,
        tie_word_embeddings=False, bos_token_id=c.get("bos_token_id"), eos_token_id=c.get("eos_token_id"),
        pad_token_id=c.get("pad_token_id"))
    torch.manual_seed(0)
    model = MistralForCausalLM(config)
    model.save_pretrained(out, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.exists(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), os.path.join(out, name))


if __name__ == "__main__":
    main()
