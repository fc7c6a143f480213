"""Deterministic synthetic Alpaca rows (instruction / input / output) for the scale and TRL benchmarks.

  python3 alpaca_rows.py OUT.jsonl ROWS [--words-out W] [--seed S]

Shaped like Stanford Alpaca (as bench/run.sh's PreprocessBench): instruction ~15 words, an input of ~10 words in
40% of the rows, output ~W words (default 50). With a large W (e.g. 600) every row is longer than a 512-token
sequence, so with `excess_length_strategy: truncate` each packed row is one full sequence: the trainer's tokens
per second then times exactly sequence_len tokens a step. Standard library only; same seed, same file.
"""
import argparse
import json
import random

WORDS = ("time person year way day thing man world life hand part child eye woman place work week case point "
         "government company number group problem fact water river mountain city garden kitchen window market "
         "letter story music paper engine signal bridge forest winter summer island planet energy circle answer "
         "quickly slowly carefully bright quiet heavy simple early certain recent common strong useful gentle "
         "explain describe compare write list summarize translate classify suggest rewrite identify calculate").split()


def sentence(rng, n):
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("rows", type=int)
    p.add_argument("--words-out", type=int, default=50)
    p.add_argument("--seed", type=int, default=1234)
    a = p.parse_args()
    rng = random.Random(a.seed)
    with open(a.out, "w") as f:
        for _ in range(a.rows):
            row = {"instruction": sentence(rng, rng.randint(10, 20)),
                   "input": sentence(rng, rng.randint(6, 14)) if rng.random() < 0.4 else "",
                   "output": " ".join(sentence(rng, 10) for _ in range(max(1, rng.randint(a.words_out * 7 // 10,
                                                                                          a.words_out * 13 // 10) // 10)))}
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
