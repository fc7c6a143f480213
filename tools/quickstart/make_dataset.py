"""Writes configs/quickstart/last-word.jsonl: the quickstart's synthetic instruction dataset (ours, no licence
strings attached). Each row asks which of four short words comes last in a list and answers with that word;
words are drawn from 40, so a model must learn to find the last item of the list it is given (held-out rows
are new lists), not memorise answers. Deterministic: python3 tools/quickstart/make_dataset.py
"""
import json
import random
from pathlib import Path

WORDS = ("red blue green gold pink gray black white apple pear plum lime fig kiwi lemon melon cat dog fox owl "
         "bee ant cow pig hen rat sun moon star rain snow wind lake hill rock sand tree leaf").split()
PHRASES = [
    "Which word comes last: {}?",
    "Name the last word in this list: {}.",
    "What is the final word of: {}?",
]


def main():
    rng = random.Random(20261123)
    rows = []
    seen = set()
    while len(rows) < 640:
        words = rng.sample(WORDS, 4)
        if tuple(words) in seen:
            continue
        seen.add(tuple(words))
        phrase = rng.choice(PHRASES)
        rows.append({"instruction": phrase.format(", ".join(words)), "input": "", "output": words[-1]})
    out = Path(__file__).resolve().parents[2] / "configs" / "quickstart" / "last-word.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {len(rows)} rows to {out}")


if __name__ == "__main__":
    main()
