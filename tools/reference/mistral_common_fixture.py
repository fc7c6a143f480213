"""Small tekken.json files and Axolotl's mistral-common token ids and labels for them (the fixture of
MistralChatTest). Run with a venv holding mistral-common 1.12.0 (the local wheel mirror's), transformers 5.18 and
Axolotl's source at the pinned commit on PYTHONPATH:

    git -C /work/.mirror/axolotl-ai-cloud+axolotl/repo archive HEAD src/axolotl | tar -x -C target/axolotl-src
    PYTHONPATH=target/axolotl-src/src target/mc-venv/bin/python tools/reference/mistral_common_fixture.py OUT_DIR

Provenance of the tekken files: the BPE vocabulary and regex are mistral-common's own bundled
src/mistral_common/data/tekken_240911.json (the Mistral-Nemo/Pixtral tokenizer, sha256 1948e2d4...5316), cut to its
first RANKS ranks (default_vocab_size = 1000 + RANKS, the cut mistral-common itself makes), the version set per
file. v3/v7 files carry no special_tokens list (as the released v3 files: mistral-common's 20 deprecated defaults);
v11/v13 files list the 20 defaults, then [ARGS]=32 and [CALL_ID]=33 (ids of Axolotl's Magistral/Devstral
tokenizer test, tests/prompt_strategies/test_chat_templates_mistral.py), [THINK]=34 and [/THINK]=35 (ids of
mistral-common's released v13 case tests/data/expected/chat-v13-released-system-think); the other ids are the
<SPECIAL_n> fillers mistral-common generates. The ids and labels come from Axolotl's MistralStrategy over
HFMistralTokenizer (finetuning mode), train_on_eos: turn, roles_to_train: [assistant], exactly as a
`type: chat_template` dataset with `tokenizer_use_mistral_common: true` runs.

mistral-common's dependencies pydantic-extra-types and Axolotl's addict are not in the wheel mirror: stubs stand in
(LanguageAlpha2 = str, only used by transcription requests; addict.Dict as an attribute dict).
"""
import base64
import copy
import hashlib
import json
import os
import sys

import mistral_common

RANKS = 1500
SPECIALS_V11 = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
                "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]", "[IMG_END]",
                "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]"] + \
               [f"<SPECIAL_{i}>" for i in range(20, 32)] + ["[ARGS]", "[CALL_ID]", "[THINK]", "[/THINK]"]

CASES = {
    "single": [{"role": "user", "content": "Hello, how are you?"},
               {"role": "assistant", "content": "I'm doing great, thank you!"}],
    "system": [{"role": "system", "content": "You are a helpful assistant."},
               {"role": "user", "content": "Hello, how are you?"},
               {"role": "assistant", "content": "I'm doing great, thank you!"}],
    "multi_turn": [{"role": "system", "content": "Answer briefly.\nUse numbers."},
                   {"role": "user", "content": "What is 12 + 30?"},
                   {"role": "assistant", "content": "42 "},
                   {"role": "user", "content": "And  twice that?\n\n"},
                   {"role": "assistant", "content": "It is 84.\nDone — voilà, ça marche!"}],
    "consecutive_users": [{"role": "user", "content": "First part."},
                          {"role": "user", "content": "Second part."},
                          {"role": "assistant", "content": "Both read."}],
    "special_text": [{"role": "user", "content": "Say [INST] and </s> literally."},
                     {"role": "assistant", "content": "[INST] </s> [/INST]"}],
    "chunks": [{"role": "system", "content": [{"type": "text", "text": "Be kind."}]},
               {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]},
               {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]}],
    "think": [{"role": "system", "content": [{"type": "text", "text": "Think first."}]},
              {"role": "user", "content": [{"type": "text", "text": "What is 15% of 240?"}]},
              {"role": "assistant", "content": [
                  {"type": "thinking", "thinking": "0.15 * 240 = 36."},
                  {"type": "text", "text": "It is 36."}]},
              {"role": "user", "content": [{"type": "text", "text": "And 10%?"}]},
              {"role": "assistant", "content": [
                  {"type": "thinking", "thinking": "24, no need to close", "closed": False},
                  {"type": "text", "text": "24."}]}],
}


def tekken_file(src, version, out):
    d = copy.deepcopy(src)
    d["vocab"] = d["vocab"][:RANKS]
    d.pop("image", None)
    d["config"]["default_vocab_size"] = 1000 + RANKS
    d["config"]["num_vocab_tokens"] = RANKS
    d["config"]["version"] = version
    if version in ("v11", "v13"):
        d["special_tokens"] = [{"rank": i, "token_str": t, "is_control": True} for i, t in enumerate(SPECIALS_V11)]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tekken.json"), "w") as f:
        json.dump(d, f, ensure_ascii=False)


def main(out_dir):
    from axolotl.prompt_strategies.chat_template import MistralPrompter, MistralStrategy
    from axolotl.utils.mistral import HFMistralTokenizer

    src_path = os.path.join(os.path.dirname(mistral_common.__file__), "data", "tekken_240911.json")
    with open(src_path, "rb") as f:
        raw = f.read()
    src = json.loads(raw)
    result = {"mistral_common": mistral_common.__version__, "source": "mistral_common/data/tekken_240911.json",
              "source_sha256": hashlib.sha256(raw).hexdigest(), "ranks": RANKS, "versions": {}}
    for version in ("v3", "v7", "v11", "v13"):
        folder = os.path.join(out_dir, f"mistral-tekken-{version}")
        tekken_file(src, version, folder)
        # a file path: from_pretrained looks a folder up on the Hub (download_tokenizer_from_hf_hub)
        tok = HFMistralTokenizer.from_pretrained(os.path.join(folder, "tekken.json"))
        strategy = MistralStrategy(
            MistralPrompter(tok, chat_template=None, message_property_mappings={"role": "role", "content": "content"}),
            tokenizer=tok, train_on_inputs=False, train_on_eos="turn", sequence_len=4096, roles_to_train=["assistant"])
        cases = {}
        for name, messages in CASES.items():
            try:
                res = strategy.tokenize_prompt({"messages": copy.deepcopy(messages)})
                cases[name] = {"messages": messages, "input_ids": list(res["input_ids"]), "labels": list(res["labels"])}
            except Exception as e:  # the version cannot encode it (think before v13): Axolotl raises
                cases[name] = {"messages": messages, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
        texts = ["Hello, how are you?", "  leading and trailing  ", "tabs\tand\nnewlines\r\n\n", "12345 67.89",
                 "Ünïcödé — voilà, 日本語のテキスト, emoji 🎉!", "don't you'll I'M", "[INST] </s> <s>"]
        enc = {t: tok.encode(t, add_special_tokens=False) for t in texts}
        result["versions"][version] = {"cases": cases, "encode": enc}
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
