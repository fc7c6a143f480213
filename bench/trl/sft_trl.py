"""TRL SFTTrainer + PEFT side of bench/trl-e2e.sh: what a Python user runs for LoRA SFT on Alpaca rows.

Reads the Alpaca JSONL, formats each row with the Stanford Alpaca prompt (the one jtune's `type: alpaca` uses) as
a prompt/completion pair (TRL then trains on the completion only, as jtune's train_on_inputs: false), loads the
model folder with transformers in fp32, LoRA r=16 alpha=32 dropout 0.05 on all linears (PEFT "all-linear"), and
trains max_steps steps of micro batch B at max_length S, AdamW lr 1e-4, max_grad_norm 1.0, no gradient
checkpointing (TRL's default is on; jtune's off), no evaluation, the adapter saved at the end. --packing: TRL's
best-fit-decreasing packing, padding-free with position ids (sdpa attention; transformers derives the per-sample
causal mask from the position ids). The whole process, imports included, is what bench/trl-e2e.sh times.
"""
import argparse
import json
import time

T0 = time.perf_counter()

PROMPT = ("Below is an instruction that describes a task, paired with an input that provides further context. "
          "Write a response that appropriately completes the request.\n\n"
          "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")
PROMPT_NO_INPUT = ("Below is an instruction that describes a task. "
                   "Write a response that appropriately completes the request.\n\n"
                   "### Instruction:\n{instruction}\n\n### Response:\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--packing", action="store_true")
    a = p.parse_args()

    import torch
    torch.set_num_threads(a.threads)
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer
    t_import = time.perf_counter() - T0

    rows = []
    with open(a.data) as f:
        for line in f:
            r = json.loads(line)
            rows.append({"prompt": (PROMPT if r.get("input") else PROMPT_NO_INPUT).format(**r),
                         "completion": r["output"]})
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32, attn_implementation="sdpa")
    tok = AutoTokenizer.from_pretrained(a.model)
    cfg = SFTConfig(output_dir=a.out, max_steps=a.steps, per_device_train_batch_size=a.batch,
                    gradient_accumulation_steps=1, learning_rate=1e-4, lr_scheduler_type="cosine", warmup_steps=0,
                    weight_decay=0.0, max_grad_norm=1.0, optim="adamw_torch", bf16=False, fp16=False, use_cpu=True,
                    gradient_checkpointing=False, max_length=a.seq, packing=a.packing, logging_steps=10,
                    save_strategy="no", eval_strategy="no", report_to="none", seed=1, dataloader_num_workers=0,
                    disable_tqdm=True)
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=tok,
                         peft_config=LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                                                task_type="CAUSAL_LM"))
    t_ready = time.perf_counter() - T0
    out = trainer.train()
    t_train = time.perf_counter() - T0 - t_ready
    trainer.save_model(a.out)
    n = len(trainer.train_dataset)
    print(json.dumps({"engine": "trl", "packing": a.packing, "train_rows": n, "train_loss": round(out.training_loss, 4),
                      "import_s": round(t_import, 1), "ready_s": round(t_ready, 1), "train_s": round(t_train, 1),
                      "total_s": round(time.perf_counter() - T0, 1)}))


if __name__ == "__main__":
    main()
