"""jtune's grown tokenizer against Axolotl's own steps in transformers. Run by tools/interop/check.sh.

usage: tokenizer_edits_check.py BASE GROWN TOKENS_JSON SPECIAL_TOKENS_JSON TEXT...
    Replays Axolotl's load_tokenizer (loaders/tokenizer.py) on BASE: add_special_tokens({k: AddedToken(v,
    rstrip=False, lstrip=False, normalized=False)}) for each special token, then add_tokens([AddedToken(t, rstrip=False,
    lstrip=False, normalized=False)]). AutoTokenizer.from_pretrained(GROWN) (the folder jtune wrote) must have the same
    vocabulary (token -> id), the same special tokens and ids, and encode every TEXT to the same ids.
"""
import json
import sys

from transformers import AddedToken, AutoTokenizer


def main(base, grown, tokens_json, special_json, *texts):
    ref = AutoTokenizer.from_pretrained(base)
    for k, v in json.loads(special_json).items():
        ref.add_special_tokens({k: AddedToken(v, rstrip=False, lstrip=False, normalized=False)})
    ref.add_tokens([AddedToken(t, rstrip=False, lstrip=False, normalized=False) for t in json.loads(tokens_json)])
    ours = AutoTokenizer.from_pretrained(grown)
    if len(ours) != len(ref):
        print(f"len(tokenizer): jtune's folder {len(ours)}, Axolotl's steps {len(ref)}")
        return 1
    if ours.get_vocab() != ref.get_vocab():
        diff = set(ours.get_vocab().items()) ^ set(ref.get_vocab().items())
        print(f"vocabularies differ: {sorted(diff)[:6]}")
        return 1
    for k in ("bos_token", "eos_token", "pad_token", "unk_token"):
        a, b = getattr(ours, k), getattr(ref, k)
        if a != b or getattr(ours, k + "_id") != getattr(ref, k + "_id"):
            print(f"{k}: jtune's folder {a!r} ({getattr(ours, k + '_id')}), Axolotl's steps {b!r} ({getattr(ref, k + '_id')})")
            return 1
    for text in texts:
        a, b = ours(text)["input_ids"], ref(text)["input_ids"]
        if a != b:
            print(f"{text!r}: jtune's folder {a}, Axolotl's steps {b}")
            return 1
    print(f"  the grown tokenizer equals Axolotl's add_special_tokens/add_tokens in transformers "
          f"({len(ours)} tokens, {len(texts)} texts)")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
