"""The machine's matmul roof for MFU: torch GEMM GFLOP/s at a fixed thread count, bf16 and fp32.

C[M, N] = A[M, K] @ B[K, N] costs 2*M*N*K FLOPs; best of R timed repeats after one warm-up, per dtype. The
default shape is a decoder projection over one 512-token sequence (4096 x 4096 weight times 4096 x 512
activations). Prints one JSON line: {"threads", "shape", "bf16_gflops", "fp32_gflops", ...}.
"""
import argparse
import json
import time

import torch


def gflops(m, k, n, dtype, repeats):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=g).to(dtype)
    b = torch.randn(k, n, generator=g).to(dtype)
    torch.mm(a, b)  # warm-up: oneDNN picks and caches its kernel
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * m * k * n / best / 1e9


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--m", type=int, default=4096)
    p.add_argument("--k", type=int, default=4096)
    p.add_argument("--n", type=int, default=512)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    out = {"engine": "pytorch-" + torch.__version__, "threads": torch.get_num_threads(),
           "shape": f"{a.m}x{a.k} @ {a.k}x{a.n}", "repeats": a.repeats}
    for name, dt in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        out[name + "_gflops"] = round(gflops(a.m, a.k, a.n, dt, a.repeats), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
