#!/usr/bin/env python3
"""Writes trainer/src/test/resources/fixtures/bnb_adamw8bit_expected.json for BnbAdamWFixtureTest: bitsandbytes'
AdamW (optim_bits=8 and 32) applied to fixed parameters and gradients for a few steps, and its blockwise
quantization of fixed values.

No bitsandbytes wheel (and no GPU) is available offline, so this is a port of its algorithm, element by element,
from bitsandbytes at commit 95f9af309d4d5793847169c39288dcd3fcbdf564:
  - bitsandbytes/functional.py create_dynamic_map (copied verbatim below, it runs as is);
  - bitsandbytes/optim/optimizer.py Optimizer2State.init_state / update_step (uint8 state for tensors with
    p.numel() >= min_8bit_size = 4096, else fp32; blocksize 256; absmax1/absmax2 zeros; qmap1 = signed dynamic map,
    qmap2 = unsigned; state["step"] += 1 before the update; gnorm_scale 1.0, max_unorm 0, skip_zeros False);
  - csrc/kernels.cu kOptimizerStatic8bit2StateBlockwise<T, ADAM, BLOCK_SIZE=256, N_PER_TH=1> with quantize_2D, and
    kOptimizer32bit2State<T, ADAM> (ops.cu launches them for g.dtype float32).
The CUDA kernels are followed, not the CPU backend's pure-torch version (backends/cpu/ops.py
_optimizer_update_8bit_blockwise_cpu), which differs from them: it applies weight decay before the update, adds eps
after dividing by the bias correction, rounds to the nearest map entry with torch.bucketize (ties downwards) and has
no sign correction for state1. Every float32 operation of the kernel is done here as one correctly rounded float32
operation (Python double arithmetic on float32 values, rounded to float32 after each operation, which is exact for
+ - * / and sqrt); the kernels' __fdividef/__powf approximations and nvcc's multiply-add contraction are not
modelled.

It also writes bnb_adamw8bit_bf16_expected.json (BnbAdamWFixtureTest's bf16 case): the same kernels instantiated
with T = __nv_bfloat16 (ops.py picks cadam_8bit_blockwise_grad_bf16 / cadam32bit_grad_bf16 for g.dtype bfloat16),
as bf16 full fine-tuning runs them: the state stays fp32 / uint8 + fp32 absmax (init_state), the bf16 gradient is
read as float, and p_vals, being T, takes two roundings to nearest even: p_vals[j] = (T)((float)p + step) and, with
weight decay, p_vals[j] = (T)((float)p_vals[j] * (1 - lr*wd)) (__float2bfloat16_rn, the conversion nvcc uses for
the assignment to __nv_bfloat16). In the 32-bit kernel g_vals[j] = gnorm_scale * (float)g_vals[j] is stored into T
too, exact for gnorm_scale 1.

And bnb_adamw8bit_fp16_expected.json (the fp16 case: Axolotl's float16: true, a model loaded in torch_dtype=float16
and trained in place without AMP): the same kernels with T = half (ops.py: cadam_8bit_blockwise_grad_fp16 /
cadam32bit_grad_fp16), the two roundings of p_vals being __float2half_rn (nearest even; overflow to inf).

    target/interop-venv/bin/python tools/reference/bnb_adamw8bit_expected.py   (any python3 with torch)
"""
import base64
import json
import math
import os
import struct

import torch


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


# --- bitsandbytes/functional.py, verbatim
def create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    data = []
    # these are additional items that come from the case
    # where all the exponent bits are zero and no
    # indicator bit is present
    non_sign_bits = total_bits - 1
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        fraction_items = int(
            2 ** (i + non_sign_bits - max_exponent_bits) + 1
            if signed
            else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1,
        )
        boundaries = torch.linspace(0.1, 1, fraction_items, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()

    if additional_items > 0:
        boundaries = torch.linspace(0.1, 1, additional_items + 1, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()

    data.append(0)
    data.append(1.0)

    assert len(data) == 2**total_bits

    gap = 256 - len(data)
    for i in range(gap):
        data.append(0)

    data.sort()
    return torch.tensor(data, dtype=torch.float32)


QMAP1 = [float(v) for v in create_dynamic_map(signed=True).tolist()]
QMAP2 = [float(v) for v in create_dynamic_map(signed=False).tolist()]
BLOCK = 256
MIN_8BIT_SIZE = 4096


def signbit(x):
    return math.copysign(1.0, x) < 0


# --- csrc/kernels.cu quantize_2D<SIGNED> (the quadrants are code[63], code[127], code[191]: the same values as
# code[pivot] at those pivots, so the search reads code[pivot] throughout)
def quantize_2d(signed, code, x):
    pivot, upper_pivot, lower_pivot = 127, 255, 0
    lower = -1.0 if signed else 0.0
    upper = 1.0
    val = code[pivot]
    i = 64
    while i > 0:
        if x > val:
            lower_pivot = pivot
            lower = val
            pivot += i
        else:
            upper_pivot = pivot
            upper = val
            pivot -= i
        val = code[pivot]
        i >>= 1
    if x > val:
        midpoint = f32((upper + val) * 0.5)
        return upper_pivot if x > midpoint else pivot
    midpoint = f32((lower + val) * 0.5)
    return lower_pivot if x < midpoint else pivot


def bf16(x):
    """float -> __nv_bfloat16 -> float: round to nearest even on the float32 bits (finite values)."""
    u = struct.unpack("<I", struct.pack("<f", f32(x)))[0]
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return struct.unpack("<f", struct.pack("<I", u))[0]


def fp16(x):
    """float -> half -> float: round to nearest even (__float2half_rn), overflow to inf (struct's 'e' raises there)."""
    try:
        return struct.unpack("<e", struct.pack("<e", f32(x)))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def identity(x):
    return x


def kernel_scalars(beta1, beta2, eps, lr, wd, step):
    b1, b2, e, l, w = f32(beta1), f32(beta2), f32(eps), f32(lr), f32(wd)
    correction1 = f32(1.0 - f32(math.pow(b1, step)))
    correction2 = f32(math.sqrt(f32(1.0 - f32(math.pow(b2, step)))))
    step_size = f32(f32(-l * correction2) / correction1)
    return dict(b1=b1, b2=b2, omb1=f32(1.0 - b1), omb2=f32(1.0 - b2), eps_c2=f32(correction2 * e),
                step_size=step_size, decay=f32(1.0 - f32(l * w)), wd=w)


def safe_div(a, b):
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * (1 if not signbit(b) else -1)
    return f32(a / b)


# --- kOptimizerStatic8bit2StateBlockwise, ADAM, one thread per element of a block of 256
def update_8bit(p, g, c1, c2, absmax1, absmax2, s, T=identity):
    n = len(p)
    for blk in range(len(absmax1)):
        lo, hi = blk * BLOCK, min(n, (blk + 1) * BLOCK)
        s1v, s2v, fin = [], [], []
        for j in range(BLOCK):
            i = lo + j
            if i < hi:
                gv, cc1, cc2 = g[i], c1[i], c2[i]
            else:  # BlockLoad fills: gradient 0, state1 code 128, state2 code 0
                gv, cc1, cc2 = 0.0, 128, 0
            if math.isfinite(gv):
                v2 = f32(QMAP2[cc2] * absmax2[blk])
                v2 = f32(f32(v2 * s["b2"]) + f32(f32(s["omb2"] * gv) * gv))
                v1 = f32(QMAP1[cc1] * absmax1[blk])
                v1 = f32(f32(v1 * s["b1"]) + f32(s["omb1"] * gv))
                fin.append(True)
            else:
                v1, v2 = 0.0, 0.0
                fin.append(False)
            s1v.append(v1)
            s2v.append(v2)
        new1 = max(abs(v) for v in s1v)
        new2 = max(abs(v) for v in s2v)
        absmax1[blk], absmax2[blk] = new1, new2
        for j in range(hi - lo):
            i = lo + j
            if fin[j]:
                upd = safe_div(s1v[j], f32(f32(math.sqrt(s2v[j])) + s["eps_c2"]))
                pv = T(f32(p[i] + f32(s["step_size"] * upd)))
                if s["wd"] > 0.0:
                    pv = T(f32(pv * s["decay"]))
                p[i] = pv
            x1 = safe_div(s1v[j], new1)
            x2 = safe_div(s2v[j], new2)
            q1 = quantize_2d(True, QMAP1, x1)
            q2 = quantize_2d(False, QMAP2, x2)
            if signbit(QMAP1[q1]) != signbit(s1v[j]):
                q1 = (q1 + 1) % 256 if s1v[j] > 0.0 else (q1 - 1) % 256
            c1[i], c2[i] = q1, q2


# --- kOptimizer32bit2State, ADAM (update_scale 1, skip_zeros False)
def update_32bit(p, g, m, v, s, T=identity):
    for i in range(len(p)):
        gv = T(g[i])  # g_vals[j] = gnorm_scale * (float)g_vals[j], stored into T
        m[i] = f32(f32(m[i] * s["b1"]) + f32(s["omb1"] * gv))
        v[i] = f32(f32(v[i] * s["b2"]) + f32(s["omb2"] * f32(gv * gv)))
        pv = T(f32(p[i] + f32(s["step_size"] * safe_div(m[i], f32(f32(math.sqrt(v[i])) + s["eps_c2"])))))
        if s["wd"] > 0.0:
            pv = T(f32(pv * s["decay"]))
        p[i] = pv


def b64f(values):
    return base64.b64encode(struct.pack("<%df" % len(values), *values)).decode()


def b64u8(values):
    return base64.b64encode(bytes(values)).decode()


def main():
    write(run(8, identity), "bnb_adamw8bit_expected.json")
    write(run(9, bf16), "bnb_adamw8bit_bf16_expected.json")
    write(run(10, fp16), "bnb_adamw8bit_fp16_expected.json")


def run(seed, T):
    """Parameters and gradients of type T (identity: float32; bf16: bfloat16 values)."""
    gen = torch.Generator().manual_seed(seed)
    # name, shape, weight decay: 8-bit with a partial tail block; 8-bit with whole blocks; 32-bit (< 4096)
    specs = [("big", [4140], 0.1), ("mat", [32, 128], 0.0), ("small", [300], 0.1)]
    beta1, beta2, eps = 0.9, 0.995, 1e-6
    lrs = [1e-2, 5e-3, 2e-2, 1e-3]
    tensors = []
    for name, shape, wd in specs:
        n = math.prod(shape)
        init = [T(f32(v)) for v in (torch.randn(n, generator=gen) * 0.3).tolist()]
        grads = []
        for step in range(len(lrs)):
            g = [T(f32(v)) for v in (torch.randn(n, generator=gen) * (0.5 if step % 2 == 0 else 0.02)).tolist()]
            if name == "big" and step == 0:
                g[:512] = [0.0] * 512  # two blocks with no gradient yet (LoRA's A at step 1): absmax 0
            if name == "mat" and step == 2:
                g[5] = math.inf  # a non-finite gradient: that element keeps its value, its moments become 0
                g[700] = math.nan
            grads.append(g)
        tensors.append(dict(name=name, shape=shape, weight_decay=wd, init=init, grads=grads))

    out_tensors = []
    for t in tensors:
        n = math.prod(t["shape"])
        p = list(t["init"])
        eight = n >= MIN_8BIT_SIZE
        blocks = (n + BLOCK - 1) // BLOCK
        if eight:
            c1, c2, a1, a2 = [0] * n, [0] * n, [0.0] * blocks, [0.0] * blocks
        else:
            m, v = [0.0] * n, [0.0] * n
        snapshots = []
        for step, lr in enumerate(lrs, start=1):
            s = kernel_scalars(beta1, beta2, eps, lr, t["weight_decay"], step)
            g = t["grads"][step - 1]
            keep = step in (1, len(lrs))  # the first and the last step (the file stays small)
            if eight:
                update_8bit(p, g, c1, c2, a1, a2, s, T)
                if keep:
                        snapshots.append(dict(step=step, param=b64f(p), state1=b64u8(c1), state2=b64u8(c2),
                                          absmax1=b64f(a1), absmax2=b64f(a2)))
            else:
                update_32bit(p, g, m, v, s, T)
                if keep:
                        snapshots.append(dict(step=step, param=b64f(p), exp_avg=b64f(m), exp_avg_sq=b64f(v)))
        out_tensors.append(dict(name=t["name"], shape=t["shape"], weight_decay=t["weight_decay"], eight_bit=eight,
                                init=b64f(t["init"]), grads=[b64f(g) for g in t["grads"]], after=snapshots))

    # Quantization of fixed values by the update's rule: blocks of 256, absmax = max|x|, quantize_2D(x / absmax),
    # the sign correction for the signed map. Block 0 holds 1.0 (absmax 1) and every midpoint of the map
    # (ties), block 1 random values, block 2 a partial block.
    quant = {}
    for signed, code in ((True, QMAP1), (False, QMAP2)):
        mids = [f32((code[i] + code[i + 1]) * 0.5) for i in range(255)]
        x = [1.0] + mids
        r = torch.randn(256 + 100, generator=gen).tolist()
        x += [f32(v * 0.01) if signed else f32(abs(v) * 0.01) for v in r]
        codes, absmax = [], []
        for blk in range(0, len(x), BLOCK):
            vals = x[blk:blk + BLOCK]
            am = max(abs(v) for v in vals)
            absmax.append(am)
            for v in vals:
                q = quantize_2d(signed, code, f32(v / am))
                if signed and signbit(code[q]) != signbit(v):
                    q = (q + 1) % 256 if v > 0.0 else (q - 1) % 256
                codes.append(q)
        quant["signed" if signed else "unsigned"] = dict(x=b64f(x), codes=b64u8(codes), absmax=b64f(absmax))

    return {
        "source": "bitsandbytes 95f9af309d4d5793847169c39288dcd3fcbdf564: csrc/kernels.cu "
                  "kOptimizerStatic8bit2StateBlockwise (ADAM, 256, 1) + quantize_2D, kOptimizer32bit2State (ADAM); "
                  "functional.py create_dynamic_map; optim/optimizer.py Optimizer2State",
        "torch_version": torch.__version__,
        "param_dtype": {bf16: "bfloat16", fp16: "float16"}.get(T, "float32"),
        "betas": [beta1, beta2], "eps": eps, "lrs": lrs, "block_size": BLOCK, "min_8bit_size": MIN_8BIT_SIZE,
        "qmap_signed": b64f(QMAP1), "qmap_unsigned": b64f(QMAP2),
        "quantize": quant,
        "tensors": out_tensors,
    }


def write(out, name):
    path = os.path.join(os.path.dirname(__file__), "..", "..", "trainer", "src", "test", "resources", "fixtures", name)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
