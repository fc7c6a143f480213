#!/usr/bin/env python3
"""Expected token ids and labels of Axolotl's instruction dataset types, for jtune's InstructionSamplesTest.

    target/interop-venv/bin/python tools/reference/instruction_expected.py data/target/published-tokenizers \
        > data/src/test/resources/instruction-formats/expected.json

TOKENIZERS_DIR holds the npm-published tokenizers the data tests fetch (data/src/test/resources/fetch-tokenizers.sh),
each beside a config.json naming its model_type (see chat_template_corpus.py for why).

The types are the ones Axolotl's utils/data/wrappers.py DATASET_HANDLERS maps (`alpaca`, `jeopardy`, `oasst`,
`gpteacher`, `summarizetldr`, `explainchoice`, `concisechoice`, each optionally `:<prompt style>`), at Axolotl
067b021c8b87a9e5e380b9173c704cf7340e30f5. Their prompters (prompters.py) and InstructionPromptTokenizingStrategy
(prompt_tokenizers.py) are restated below from that source, not from jtune's Java code: Axolotl itself needs a GPU
stack to import. The rule: the prompt (system line + turn format) and the response are tokenized separately with
the tokenizer's own special tokens (transformers' `tokenizer(text)`), EOS appended to the response unless it
already ends in EOS, the response's leading BOS dropped, and the two concatenated; labels -100 over the prompt
(unless train_on_inputs), the response's ids after it.
"""
import json
import os
import sys

from transformers import AutoTokenizer

IGNORE_INDEX = -100
SEQUENCE_LEN = 2048

# prompters.py: AlpacaPrompter.match_prompt_style, by PromptStyle value
STYLES = {
    "instruct": ("### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
                 "### Instruction:\n{instruction}\n\n### Response:\n", "{system}\n\n"),
    "chat": ("USER: {instruction}\n{input}\nASSISTANT:", "USER: {instruction}\nASSISTANT:", "SYSTEM: {system}\n"),
    "chatml": ("<|im_start|>user\n{instruction}\n{input}<|im_end|>\n<|im_start|>assistant\n",
               "<|im_start|>user\n{instruction}<|im_end|>\n<|im_start|>assistant\n",
               "<|im_start|>system\n{system}<|im_end|>\n"),
    "phi": ("<|user|>\n{instruction}<|end|>{input}<|assistant|>", "<|user|>\n{instruction}<|end|>\n<|assistant|>\n",
            "<|system|>\n{system}<|end|>\n"),
}
ALPACA_SYSTEM = ("Below is an instruction that describes a task, paired with an input that provides further context. "
                 "Write a response that appropriately completes the request.")
ALPACA_SYSTEM_NO_INPUT = ("Below is an instruction that describes a task. Write a response that appropriately "
                          "completes the request.")
EXPLAIN = "Choose the answer that best answers the question. Explain your reasoning.\n"
CONCISE = "Choose the answer that best answers the question. Be concise in your response.\n\n"


def prompter(base, style):
    """(turn_format, turn_no_input_format, system_format, system_prompt, system_no_input_prompt)"""
    turn, turn_no_input, system_format = STYLES[style or "instruct"]
    if base == "concisechoice":  # MultipleChoiceConcisePrompter overrides match_prompt_style, keeping the
        # class-level system_format "{system}" of AlpacaPrompter
        return "USER: {instruction}\n{input}\nASSISTANT:", "USER: {instruction}\nASSISTANT:", "{system}", CONCISE, CONCISE
    if base == "summarizetldr":  # SummarizeTLDRPrompter: no system prompt, its own turn formats
        return ("USER: Summarize the following article as a TL;DR.\n{instruction}\n{input}\nASSISTANT:",
                "USER: Summarize the following article as a TL;DR.\n{instruction}\nASSISTANT:", "{system}", "", "")
    if base == "explainchoice":
        return turn, turn_no_input, system_format, EXPLAIN, EXPLAIN
    return turn, turn_no_input, system_format, ALPACA_SYSTEM, ALPACA_SYSTEM_NO_INPUT


def build_prompt(base, style, instruction, input_text):  # AlpacaPrompter._build_result without the output
    turn, turn_no_input, system_format, system, system_no_input = prompter(base, style)
    if input_text:
        return (system_format.format(system=system) if system else "") + turn.format(
            instruction=instruction, input=input_text)
    return (system_format.format(system=system_no_input) if system_no_input else "") + turn_no_input.format(
        instruction=instruction)


def fields(base, row):  # the strategies' parse_instruction_fields
    if base == "alpaca":
        return row["instruction"], row["input"] if "input" in row else "", row["output"]
    if base == "jeopardy":
        return row["question"], row["category"], "what is " + row["answer"]
    if base == "oasst":
        return row["INSTRUCTION"], "", row["RESPONSE"]
    if base == "gpteacher":
        return row["instruction"], row["input"] if "input" in row else "", row["response"]
    if base == "summarizetldr":
        return row["article"], "", row["summary"]
    if base in ("explainchoice", "concisechoice"):
        return (row["question"], "\n".join(f'- "{choice}"' for choice in row["choices"]),
                row["solution"] if "solution" in row else row["explanation"])
    raise ValueError(base)


def tokenize(tok, text, add_eos_token=True, strip_bos_token=False):  # PromptTokenizingStrategy._tokenize
    if not text:
        return []
    ids = tok(text, truncation=True, max_length=SEQUENCE_LEN, padding=False, return_tensors=None)["input_ids"]
    if not ids:
        return []
    if ids[-1] != tok.eos_token_id and len(ids) < SEQUENCE_LEN and add_eos_token:
        ids.append(tok.eos_token_id)
    if ids[0] == tok.bos_token_id and strip_bos_token:
        ids = ids[1:]
    return ids


def sample(tok, type_name, row, train_on_inputs):  # InstructionPromptTokenizingStrategy.tokenize_prompt
    base, _, style = type_name.partition(":")
    instruction, input_text, response = fields(base, row)
    prompt = tokenize(tok, build_prompt(base, style or None, instruction, input_text), add_eos_token=False)
    labels = list(prompt) if train_on_inputs else [IGNORE_INDEX] * len(prompt)
    answer = tokenize(tok, response, strip_bos_token=True, add_eos_token=True)
    return prompt + answer, labels + answer


# Generic rows, laid out per type below. "{EOS}" becomes the tokenizer's EOS text: literal special-token text.
ROWS = [
    {"name": "no_input", "instruction": "Name a primary color.", "input": "", "output": "Red."},
    {"name": "with_input", "instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
    {"name": "input_absent", "instruction": "Say hi.", "output": "Hi!"},
    {"name": "unicode_whitespace", "instruction": "  Réponds en 日本語\t", "input": "naïve café ☕ ",
     "output": " 東京は日本の首都です。\n\n  Ünïcödé ✓\n"},
    {"name": "literal_eos_end", "instruction": "Stop now.", "input": "", "output": "Stopped.{EOS}"},
    {"name": "empty_output", "instruction": "Answer nothing.", "input": "", "output": ""},
    {"name": "newline_first", "instruction": "List two fruits.", "input": "", "output": "\n- apple\n- pear"},
]
TYPES = ["alpaca", "alpaca:chat", "alpaca:chatml", "alpaca:phi", "jeopardy", "oasst", "gpteacher", "gpteacher:chat",
         "summarizetldr", "explainchoice", "concisechoice"]
TOKENIZERS = ["llama3_1", "llama2", "qwen3", "gemma3"]


def typed_row(base, row):
    instruction, input_text, output = row["instruction"], row.get("input"), row["output"]
    if base == "alpaca":
        return {k: row[k] for k in ("instruction", "input", "output") if k in row}
    if base == "jeopardy":
        return {"question": instruction, "category": input_text or "", "answer": output}
    if base == "oasst":
        return {"INSTRUCTION": instruction, "RESPONSE": output}
    if base == "gpteacher":
        r = {"instruction": instruction, "response": output}
        if input_text is not None:
            r["input"] = input_text
        return r
    if base == "summarizetldr":
        return {"article": instruction, "summary": output}
    r = {"question": instruction, "choices": [c for c in (input_text or "").split(" ") if c][:3]}
    r["solution" if len(instruction) % 2 else "explanation"] = output
    return r


def main():
    root = sys.argv[1]
    cases = []
    for tname in TOKENIZERS:
        tok = AutoTokenizer.from_pretrained(os.path.join(root, tname))
        for type_name in TYPES:
            base = type_name.partition(":")[0]
            for row in ROWS:
                concrete = json.loads(json.dumps(typed_row(base, row)).replace("{EOS}", tok.eos_token))
                for train_on_inputs in (False, True):
                    ids, labels = sample(tok, type_name, concrete, train_on_inputs)
                    cases.append({"tokenizer": tname, "type": type_name, "row_name": row["name"], "row": concrete,
                                  "train_on_inputs": train_on_inputs, "input_ids": ids, "labels": labels})
    json.dump({"axolotl_commit": "067b021c8b87a9e5e380b9173c704cf7340e30f5",
               "generated_by": "tools/reference/instruction_expected.py", "sequence_len": SEQUENCE_LEN,
               "cases": cases}, sys.stdout, ensure_ascii=False, indent=0)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
