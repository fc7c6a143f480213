"""Writes the PEFT 0.21 adapter fixtures of lora/src/test/resources/fixtures/peft-0.21/ with real PEFT.

usage: target/interop-venv/bin/python tools/reference/peft_adapter_config.py lora/src/test/resources/fixtures/peft-0.21

Each case wraps a tiny LlamaForCausalLM (vocab 64, hidden 16, 1 layer) with get_peft_model(LoraConfig(...)) as
Axolotl builds it (task_type CAUSAL_LM, bias "none") and saves it with PeftModel.save_pretrained. PEFT writes
target_modules in Python set order, which changes with PYTHONHASHSEED; this script re-sorts that one list so the
fixture is stable (jtune writes it sorted). Everything else is byte for byte what PEFT wrote. The
rslora-saved case keeps adapter_model.safetensors too, with lora_B set to random values (seed 0).
"""
import json
import os
import sys

import peft
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

CASES = {
    "default": dict(r=8, lora_alpha=16, lora_dropout=0.05,
                    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
    "rslora-saved": dict(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], use_rslora=True,
                         modules_to_save=["embed_tokens", "lm_head"]),
}


def main(out_root):
    assert peft.__version__ == "0.21.0", peft.__version__
    for name, kwargs in CASES.items():
        torch.manual_seed(0)
        cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                          num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False)
        model = LlamaForCausalLM(cfg)
        model.name_or_path = "NousResearch/Llama-3.2-1B"
        peft_model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", bias="none", **kwargs))
        with torch.no_grad():
            for n, p in peft_model.named_parameters():
                if "lora_B" in n:
                    p.normal_(0, 0.1)
        out = os.path.join(out_root, name)
        peft_model.save_pretrained(out)
        path = os.path.join(out, "adapter_config.json")
        with open(path) as f:
            text = f.read()
        config = json.loads(text)
        config["target_modules"] = sorted(config["target_modules"])
        with open(path, "w") as f:
            f.write(json.dumps(config, indent=2, sort_keys=True))
        os.remove(os.path.join(out, "README.md"))
        if name != "rslora-saved":
            os.remove(os.path.join(out, "adapter_model.safetensors"))


if __name__ == "__main__":
    main(sys.argv[1])
