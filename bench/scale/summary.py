"""Summarises bench/scale.sh's work directory: one row per run, as a Markdown table.

For each run NAME the directory holds NAME.meta (json: engine, model, config, seq, load averages), NAME.time
(/usr/bin/time -v), and either NAME.log (jtune's console, each line prefixed by its epoch time and a tab) with
out-NAME/metrics.jsonl, or NAME.json (bench/pytorch/peft_step.py's output). roof.json: the matmul roof.

MFU = ((4 N + 6 N_lora) tokens + 12 L d_attn T^2 rows) / step time / roof, N the frozen matmul weights (decoder
linears and the head; not the embedding, a lookup), N_lora the adapter's parameters: the frozen base costs a
forward (2N) and the gradient to its input (2N), the adapter forward, input gradient and weight gradient (6);
attention's two T x T products per layer, forward and twice in backward, counted without the causal half (as
PaLM's appendix B). Recomputation under gradient checkpointing is not counted (model FLOPs, not hardware FLOPs).
Standard library only.
"""
import json
import os
import sys


def model_flops(cfg, seq, rows, r):
    h, ff, L, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    hd = cfg.get("head_dim") or h // heads
    shapes = [(h, heads * hd), (h, kv * hd), (h, kv * hd), (heads * hd, h), (h, ff), (h, ff), (ff, h)]
    n = L * sum(i * o for i, o in shapes) + v * h
    n_lora = L * sum(r * (i + o) for i, o in shapes)
    tokens = seq * rows
    flops = (4 * n + 6 * n_lora) * tokens + 12 * L * heads * hd * seq * seq * rows
    return n, n_lora, flops


def time_v(path):
    out = {}
    for line in open(path):
        line = line.strip()
        if line.startswith("Maximum resident set size (kbytes):"):
            out["peak_rss_mb"] = int(line.split(":")[1]) / 1024.0
        elif line.startswith("Elapsed (wall clock) time"):
            parts = line.split(": ", 1)[1].split(":")
            secs = 0.0
            for p in parts:
                secs = secs * 60 + float(p)
            out["wall_s"] = secs
        elif line.startswith("Exit status:"):
            out["exit"] = int(line.split(":")[1])
    return out


def jtune_run(work, name, meta):
    lines = []
    for raw in open(os.path.join(work, name + ".log"), encoding="utf-8", errors="replace"):
        stamp, _, text = raw.rstrip("\n").partition("\t")
        lines.append((float(stamp), text))
    t_start = lines[0][0]
    model_i = next((i for i, (_, t) in enumerate(lines) if t.startswith("model: ")), None)
    res = {}
    if model_i is not None:
        # The data report is printed just before the model is loaded; "model: ..." right after.
        res["load_s"] = lines[model_i][0] - lines[model_i - 1][0]
        res["to_model_s"] = lines[model_i][0] - t_start
    loaded = [t for _, t in lines if t.startswith("model loaded in ")]
    if loaded:  # the trainer's own timer (since it prints one)
        res["load_s"] = float(loaded[0].split()[3])
    eff = [t for _, t in lines if t.startswith("packing efficiency")]
    res["packing"] = eff[0].split()[2] if eff else "?"
    metrics = os.path.join(work, "out-" + name, "metrics.jsonl")
    steps = [json.loads(l) for l in open(metrics)] if os.path.exists(metrics) else []
    steps = [s for s in steps if "tokens_per_second" in s]
    # step_seconds where the trainer logs it; before that, rows were full (truncate + 100% packing): seq tokens a step.
    res["step_s"] = [s["step_seconds"] if "step_seconds" in s else meta["seq"] / s["tokens_per_second"]
                     for s in steps]
    res["rss_steps_mb"] = [s["memory_rss_mb"] for s in steps]
    res["errors"] = [t for _, t in lines if "rror" in t or "xception" in t][:3]
    return res


def peft_run(work, name, meta):
    res = {}
    path = os.path.join(work, name + ".json")
    rows = [json.loads(l) for l in open(path) if l.startswith("{")] if os.path.exists(path) else []
    final = [r for r in rows if "step_seconds" in r]
    if final:
        f = final[0]
        res["load_s"] = f["load_s"]
        res["step_s"] = f["step_seconds"]
        res["rss_steps_mb"] = [r["rss_mb"] for r in rows if "rss_mb" in r]
        res["packing"] = "n/a"
    return res


def main():
    work = sys.argv[1]
    roof = json.load(open(os.path.join(work, "roof.json")))
    names = [l.strip() for l in open(os.path.join(work, "runs.txt")) if l.strip()]
    print(f"matmul roof ({roof['engine']}, {roof['threads']} threads, {roof['shape']}, best of {roof['repeats']}): "
          f"bf16 {roof['bf16_gflops']} GFLOP/s, fp32 {roof['fp32_gflops']} GFLOP/s; load average {roof.get('load', '?')}")
    print()
    print("| model | engine | config | load s | peak RSS (process) | RSS during steps | best s/step after the first (all steps) "
          "| tokens/s (best) | MFU (bf16 roof) | load avg before → after |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    for name in names:
        meta = json.load(open(os.path.join(work, name + ".meta")))
        tv = time_v(os.path.join(work, name + ".time")) if os.path.exists(os.path.join(work, name + ".time")) else {}
        res = jtune_run(work, name, meta) if meta["engine"] == "jtune" else peft_run(work, name, meta)
        cfg = json.load(open(os.path.join(meta["model"], "config.json")))
        _, _, flops = model_flops(cfg, meta["seq"], 1, 16)
        steps = res.get("step_s", [])
        timed = steps[1:] if len(steps) > 1 else steps
        if timed:
            # Best step after the first: other processes only ever slow a step down (bench/README.md).
            s = min(timed)
            tps = meta["seq"] / s
            mfu = flops / s / (roof["bf16_gflops" if meta.get("dtype", "bf16") == "bf16" else "fp32_gflops"] * 1e9)
            step_txt = f"{s:.2f} ({', '.join(f'{x:.2f}' for x in steps)})"
            tps_txt, mfu_txt = f"{tps:.1f}", f"{100 * mfu:.1f}%"
        else:
            step_txt, tps_txt, mfu_txt = "failed" if tv.get("exit") else "-", "-", "-"
        rss = res.get("rss_steps_mb", [])
        peak = tv.get("peak_rss_mb")
        n, _, _ = model_flops(cfg, meta["seq"], 1, 16)
        size = f"{(n + cfg['vocab_size'] * cfg['hidden_size']) / 1e9:.2f}B"
        print(f"| {size} | {meta['engine']} "
              f"| {meta['config']} | {res.get('load_s', float('nan')):.1f} "
              f"| {peak / 1024 if peak else float('nan'):.2f} GiB | {max(rss) / 1024 if rss else float('nan'):.2f} GiB "
              f"| {step_txt} | {tps_txt} | {mfu_txt} | {meta.get('load_before', '?')} → {meta.get('load_after', '?')} |")
        for e in res.get("errors", []):
            print(f"  {name}: {e}", file=sys.stderr)
    print()
    for path in sorted(os.listdir(work)):
        if path.startswith("loadbench-") and path.endswith(".txt"):
            for line in open(os.path.join(work, path)):
                if line.startswith("load "):
                    print("- " + line.strip())
    cfgs = {}
    for name in names:
        meta = json.load(open(os.path.join(work, name + ".meta")))
        cfgs[meta["model"]] = meta["seq"]
    for model, seq in cfgs.items():
        cfg = json.load(open(os.path.join(model, "config.json")))
        n, n_lora, flops = model_flops(cfg, seq, 1, 16)
        print(f"- {model}: N = {n:,} frozen matmul weights, N_lora = {n_lora:,}, "
              f"{flops / 1e12:.3f} TFLOP per {seq}-token step")


if __name__ == "__main__":
    main()
