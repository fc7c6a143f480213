"""PyTorch + PEFT reference for bench/scale.sh: LoRA over a bf16 base loaded with transformers.

The model folder is the one jtune trains (a Hugging Face checkpoint); LoRA r=16 alpha=32 on every linear of the
decoder (PEFT's "all-linear": q, k, v, o, gate, up, down; not the head), adapter weights upcast to fp32 (PEFT's
default autocast_adapter_dtype), AdamW over them, max_grad_norm 1.0, micro batch 1. The data are the same
Alpaca rows jtune reads (Stanford Alpaca prompt + output, tokenized by the folder's tokenizer, truncated to
--seq tokens; rows shorter than --seq are skipped, so every step is one full sequence). Per-step wall time of
forward + backward + clipping + optimizer step, as jtune's own step timer measures.

Prints one JSON line: load seconds, RSS after load, per-step seconds, tokens per step, peak RSS (ru_maxrss).
"""
import argparse
import json
import resource
import time

import torch

PROMPT = ("Below is an instruction that describes a task, paired with an input that provides further context. "
          "Write a response that appropriately completes the request.\n\n"
          "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")
PROMPT_NO_INPUT = ("Below is an instruction that describes a task. "
                   "Write a response that appropriately completes the request.\n\n"
                   "### Instruction:\n{instruction}\n\n### Response:\n")


def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="Alpaca JSONL")
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--lora-dropout", type=float, default=0.05)
    p.add_argument("--profile-step", type=int, default=-1, help="record this step (0-based) with torch.profiler")
    p.add_argument("--profile-out", default="peft-profile.json", help="its Chrome trace")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=dtype)
    if a.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=a.lora_dropout,
                                             target_modules="all-linear", task_type="CAUSAL_LM"))
    model.train()
    load_s = time.perf_counter() - t0
    rss_after_load = rss_mb()
    tok = AutoTokenizer.from_pretrained(a.model)

    batches = []
    with open(a.data) as f:
        for line in f:
            r = json.loads(line)
            text = (PROMPT if r.get("input") else PROMPT_NO_INPUT).format(**r) + r["output"]
            ids = tok(text)["input_ids"][:a.seq]
            if len(ids) == a.seq:
                batches.append(torch.tensor([ids]))
            if len(batches) == a.steps:
                break
    if len(batches) < a.steps:
        raise SystemExit(f"{a.data}: only {len(batches)} rows reach {a.seq} tokens, {a.steps} steps asked")

    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    steps = []
    for ids in batches:
        prof = None
        if len(steps) == a.profile_step:
            prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True)
            prof.__enter__()
        t = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        steps.append(time.perf_counter() - t)
        if prof is not None:
            prof.__exit__(None, None, None)
            prof.export_chrome_trace(a.profile_out)
        print(json.dumps({"step": len(steps), "loss": round(loss.item(), 4), "seconds": round(steps[-1], 3),
                          "rss_mb": round(rss_mb(), 1)}), flush=True)
    print(json.dumps({"engine": f"pytorch-{torch.__version__}+peft", "model": a.model, "dtype": a.dtype,
                      "threads": torch.get_num_threads(), "gradient_checkpointing": a.gradient_checkpointing,
                      "trainable": sum(q.numel() for q in params), "tokens_per_step": a.seq,
                      "load_s": round(load_s, 2), "rss_after_load_mb": round(rss_after_load, 1),
                      "step_seconds": [round(s, 3) for s in steps],
                      # ru_maxrss is KiB on Linux: the process-wide peak (loading included).
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)}))


if __name__ == "__main__":
    main()
