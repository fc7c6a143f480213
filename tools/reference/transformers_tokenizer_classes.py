#!/usr/bin/env python3
"""The model types for which transformers' AutoTokenizer does not build the class a tokenizer_config.json names
as `LlamaTokenizer` / `LlamaTokenizerFast`, for jtune's Tokenizer (data module):

    target/interop-venv/bin/python tools/reference/transformers_tokenizer_classes.py \
        > data/src/main/resources/dev/jtune/data/tokenizer/transformers-llama-class-ignored.txt

transformers 5 builds LlamaTokenizer from tokenizer.json's vocabulary and merges only, with its own
pre-tokenizer (Metaspace) and decoder; TokenizersBackend loads tokenizer.json as it is. Which one a model folder
gets is decided in `AutoTokenizer.from_pretrained` from config.json's `model_type` first: this script replays
that decision (models/auto/tokenization_auto.py, the branch on TOKENIZER_MAPPING_NAMES and
MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS) for every registered model type with the hub class LlamaTokenizerFast
and lists those that end anywhere but LlamaTokenizer. A model type not listed (or no config.json) keeps the hub
class. The result is checked against real AutoTokenizer loads of a few types.
"""
import json
import os
import sys
import tempfile

import transformers
from transformers import AutoTokenizer
from transformers.models.auto.tokenization_auto import (MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS,
                                                         TOKENIZER_MAPPING_NAMES)

BACKENDS = ("TokenizersBackend", "PythonBackend", "PreTrainedTokenizerFast", "MistralCommonBackend")


def llama_class_kept(model_type, hub="LlamaTokenizerFast"):
    registered = TOKENIZER_MAPPING_NAMES.get(model_type)
    if registered is None or registered.removesuffix("Fast") == hub.removesuffix("Fast"):
        return True
    registered = registered.removesuffix("Fast")
    if registered in BACKENDS:
        return False  # TokenizersBackend: tokenizer.json as it is
    # a specific class: the registered one where the hub's is known to be wrong, else the hub's
    return not (model_type in MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS)


def check(tokenizer_dir):
    """Real loads: a copy of a LlamaTokenizer folder with a config.json of each model type."""
    for model_type in ("llama", "mistral", "deepseek_v3", "qwen2", "phi3", "yi", "internlm2"):
        with tempfile.TemporaryDirectory() as d:
            for f in ("tokenizer.json", "tokenizer_config.json"):
                os.symlink(os.path.abspath(os.path.join(tokenizer_dir, f)), os.path.join(d, f))
            with open(os.path.join(d, "config.json"), "w") as out:
                json.dump({"model_type": model_type}, out)
            try:
                tok = AutoTokenizer.from_pretrained(d)
            except Exception as e:  # a model type whose config needs more than model_type
                print(f"check {model_type}: not loadable ({type(e).__name__}: {e})", file=sys.stderr)
                continue
            kept = type(tok).__name__ == "LlamaTokenizer"
            assert kept == llama_class_kept(model_type), (model_type, type(tok).__name__)
            print(f"check {model_type}: {type(tok).__name__}", file=sys.stderr)


def main():
    if len(sys.argv) > 1:
        check(sys.argv[1])
    ignored = sorted(t for t in TOKENIZER_MAPPING_NAMES if not llama_class_kept(t))
    print(f"# transformers {transformers.__version__}: model types (config.json model_type) for which AutoTokenizer")
    print("# does not build the LlamaTokenizer that tokenizer_config.json names; written by")
    print("# tools/reference/transformers_tokenizer_classes.py")
    for t in ignored:
        print(t)


if __name__ == "__main__":
    main()
