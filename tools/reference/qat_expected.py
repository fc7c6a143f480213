#!/usr/bin/env python3
"""Writes quant/src/test/resources/fixtures/qat_expected.json for QatFixtureTest: Axolotl's QAT fake quantization
(qat: activation_dtype int8, weight_dtype int4) on one small linear layer, forward output and the gradients of the
input and the weight, in fp32 and in bf16.

What Axolotl 067b021 builds (src/axolotl/utils/quantization.py, _make_qat_config): for weight_dtype int4 with
activation_dtype int8, torchao's FakeQuantizedLinear with
  weight_config     = Int4WeightFakeQuantizeConfig(group_size=G, activation_dtype=torch.bfloat16)
  activation_config = IntxFakeQuantizeConfig(dtype=torch.int8, granularity="per_token", is_symmetric=False)
and FakeQuantizedLinear.forward = F.linear(act_fq(x), weight_fq(weight), bias).

No torchao wheel is available offline, so its code is copied here from pytorch/ao tag v0.18.0 (commit
5f2baf9d575cf732362594c998c399902942531f; the functions below are identical in v0.17.0, Axolotl's pin):
torchao/quantization/qat/fake_quantizer.py (Int4WeightFakeQuantizer._bf16_activations_forward,
IntxFakeQuantizer._per_token_forward: verbatim), torchao/quantization/qat/utils.py (_fake_quantize_per_token) and
torchao/quantization/quant_primitives.py (_Round, _get_reduction_params, _choose_qparams_affine's ASYMMETRIC branch,
_quantize_affine_no_dtype_cast, _dequantize_affine_no_dtype_check: verbatim, asserts and other branches dropped).

    target/interop-venv/bin/python tools/reference/qat_expected.py      (torch 2.13 CPU)
"""
import base64
import json
import os
import struct

import torch
import torch.nn.functional as F


# --- torchao/quantization/quant_primitives.py
class _Round(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, gy):
        return gy


def _get_reduction_params(block_size, input_size):
    shape_for_reduction = []
    reduction_dims = []
    cur_dim = 0
    for i in range(len(block_size)):
        if block_size[i] != input_size[i] and block_size[i] > 1:
            shape_for_reduction.append(input_size[i] // block_size[i])
            shape_for_reduction.append(block_size[i])
            reduction_dims.append(cur_dim + 1)
            cur_dim += 2
        else:
            shape_for_reduction.append(input_size[i])
            if block_size[i] != 1:
                reduction_dims.append(cur_dim)
            cur_dim += 1
    return shape_for_reduction, reduction_dims


@torch.no_grad()
def _choose_qparams_affine_asymmetric(input, block_size, quant_min, quant_max, eps, scale_dtype, zero_point_dtype):
    if scale_dtype is None:
        scale_dtype = input.dtype
    if eps is None:
        eps = torch.finfo(input.dtype).smallest_normal
    shape_for_reduction, reduction_dims = _get_reduction_params(block_size, input.size())
    input = input.view(shape_for_reduction)
    min_val = torch.amin(input, dim=reduction_dims, keepdim=False)
    max_val = torch.amax(input, dim=reduction_dims, keepdim=False)
    min_val_neg = torch.min(min_val, torch.zeros_like(min_val))
    max_val_pos = torch.max(max_val, torch.zeros_like(max_val))
    scale = (max_val_pos - min_val_neg) / float(quant_max - quant_min)
    scale = torch.clamp(scale, min=eps)
    zero_point = quant_min - _Round.apply(min_val_neg / scale)
    zero_point = torch.clamp(zero_point, quant_min, quant_max)
    if zero_point_dtype is None:
        zero_point_dtype = torch.int32
    return scale.to(dtype=scale_dtype, device=input.device), zero_point.to(dtype=zero_point_dtype)


def _quantize_affine_no_dtype_cast(input, block_size, scale, zero_point, quant_min, quant_max):
    shape_for_reduction, reduction_dims = _get_reduction_params(block_size, input.size())
    original_shape = input.shape
    input = input.view(shape_for_reduction)
    shape_after_reduction = shape_for_reduction
    for i in reduction_dims:
        shape_after_reduction[i] = 1
    scale = scale.view(shape_after_reduction)
    if zero_point is not None and zero_point.numel() > 0:
        zero_point = zero_point.view(shape_after_reduction)
    else:
        zero_point = None
    quant = torch.clamp(_Round.apply(input * (1.0 / scale)) + zero_point, quant_min, quant_max)
    quant = quant.view(original_shape)
    return quant


def _dequantize_affine_no_dtype_check(input, block_size, scale, zero_point, quant_min, quant_max,
                                      output_dtype=torch.float32):
    shape_for_reduction, reduction_dims = _get_reduction_params(block_size, input.size())
    original_shape = input.shape
    input = input.view(shape_for_reduction)
    shape_after_reduction = shape_for_reduction
    for i in reduction_dims:
        shape_after_reduction[i] = 1
    scale = scale.view(shape_after_reduction)
    if zero_point is not None:
        zero_point = zero_point.view(shape_after_reduction)
    dequant = input.to(output_dtype, copy=True)
    if zero_point is not None:
        dequant = dequant - zero_point.to(output_dtype)
    dequant = dequant * scale
    return dequant.view(original_shape).to(output_dtype)


# --- torchao/quantization/qat/utils.py
def _fake_quantize_per_token(input, scales, zero_points, quant_min, quant_max):
    block_size = [1] * (input.dim() - 1) + [input.shape[-1]]  # _get_per_token_block_size
    q = _quantize_affine_no_dtype_cast(input, block_size, scales, zero_points, quant_min, quant_max)
    fq = _dequantize_affine_no_dtype_check(q, block_size, scales, zero_points, quant_min, quant_max,
                                           output_dtype=input.dtype)
    return fq.reshape_as(input).to(input.dtype)


# --- torchao/quantization/qat/fake_quantizer.py
def int8_per_token_forward(x):
    # IntxFakeQuantizer._per_token_forward with IntxFakeQuantizeConfig(torch.int8, "per_token", is_symmetric=False):
    # scale_precision float32, zero_point_precision int32, eps None
    qmin, qmax = -128, 127
    scale, zero_point = _choose_qparams_affine_asymmetric(
        x, [1] * (x.dim() - 1) + [x.shape[-1]], qmin, qmax, None, torch.float32, torch.int32)
    return _fake_quantize_per_token(x, scale, zero_point, qmin, qmax)


def int4_weight_bf16_forward(w, group_size):
    # Int4WeightFakeQuantizer._bf16_activations_forward (verbatim)
    eps = 1e-6
    qmin, qmax = 0, 15
    mslk_symmetric_qmax = 8
    w_grouped = w.to(torch.float32).view(w.shape[0], -1, group_size)
    max_val = torch.amax(w_grouped, dim=-1, keepdim=True)
    min_val = torch.amin(w_grouped, dim=-1, keepdim=True)
    scale = torch.clamp(max_val - min_val, min=eps) / qmax
    zero_point = min_val + scale * mslk_symmetric_qmax
    fq = _Round.apply((w_grouped - min_val) / scale).clamp(qmin, qmax)
    fq = fq - mslk_symmetric_qmax
    fq = fq * scale + zero_point
    return fq.view(w.shape).to(w.dtype)


def b64f(t):
    v = t.detach().to(torch.float32).reshape(-1).tolist()
    return base64.b64encode(struct.pack("<%df" % len(v), *v)).decode()


def case(name, dtype, x0, w0, g0, group_size, act, weight):
    x = x0.to(dtype).detach().clone().requires_grad_(True)
    w = w0.to(dtype).detach().clone().requires_grad_(True)
    xq = int8_per_token_forward(x) if act else x
    wq = int4_weight_bf16_forward(w, group_size) if weight else w
    y = F.linear(xq, wq)
    y.backward(g0.to(dtype))
    return {"name": name, "dtype": str(dtype).replace("torch.", ""), "group_size": group_size,
            "activation": "int8" if act else None, "weight": "int4" if weight else None,
            "x": b64f(x), "w": b64f(w), "grad_out": b64f(g0.to(dtype)),
            "y": b64f(y), "grad_x": b64f(x.grad), "grad_w": b64f(w.grad),
            "x_shape": list(x.shape), "w_shape": list(w.shape)}


def main():
    torch.manual_seed(1234)
    out_f, in_f = 16, 64
    x0 = torch.randn(2, 5, in_f) * 1.5
    x0[0, 1] = 0.0  # a row of zeros: the scale falls to eps, the zero point to -128
    x0[1, 2] = x0[1, 2].abs() + 0.25  # a row with no negative value: min clipped to 0
    w0 = torch.randn(out_f, in_f) * 0.05
    w0[3, :32] = 0.01  # a constant group: max == min, the scale falls to eps / 15
    w0[5, 7] = w0[5, 6] = w0[5, :32].max()  # tied maxima share amax's gradient
    g0 = torch.randn(2, 5, out_f)
    cases = []
    for dtype in (torch.float32, torch.bfloat16):
        for gs in (32, 16):
            cases.append(case(f"int8-int4-g{gs}", dtype, x0, w0, g0, gs, True, True))
        cases.append(case("int8-act-only", dtype, x0, w0, g0, 32, True, False))
        cases.append(case("int4-weight-only-g32", dtype, x0, w0, g0, 32, False, True))
    path = os.path.join(os.path.dirname(__file__), "..", "..", "quant", "src", "test", "resources", "fixtures",
                        "qat_expected.json")
    with open(path, "w") as f:
        json.dump({"torch": torch.__version__, "torchao": "v0.18.0 (5f2baf9d), code copied",
                   "cases": cases}, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(path), len(cases), "cases")


if __name__ == "__main__":
    main()
