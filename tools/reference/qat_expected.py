#!/usr/bin/env python3
"""Writes quant/src/test/resources/fixtures/qat_expected.json for QatFixtureTest: Axolotl's QAT fake quantization
(qat: activation_dtype int8, weight_dtype int4; and mxfp4/mxfp4) on one small linear layer, forward output and the
gradients of the input and the weight, in fp32 and in bf16.

What Axolotl 067b021 builds (src/axolotl/utils/quantization.py, _make_qat_config): for weight_dtype int4 with
activation_dtype int8, torchao's FakeQuantizedLinear with
  weight_config     = Int4WeightFakeQuantizeConfig(group_size=G, activation_dtype=torch.bfloat16)
  activation_config = IntxFakeQuantizeConfig(dtype=torch.int8, granularity="per_token", is_symmetric=False)
and FakeQuantizedLinear.forward = F.linear(act_fq(x), weight_fq(weight), bias). For weight_dtype mxfp4 it builds
torchao's MXFakeQuantizedLinear with MXFakeQuantizeConfig(dtype=torch.float4_e2m1fn_x2, block_size=32) for both
(scaling_mode RCEIL, kernel_preference EMULATED by default): forward mm(dequant(to_mx(x)), dequant(to_mx(w)).t()),
backward grad_x = grad @ dequant(w), grad_w = grad.t() @ dequant(x) (prototype/qat/mx.py
_MXQuantizedForwardFakeQuantizedBackward).

No torchao wheel is available offline, so its code is copied here from pytorch/ao tag v0.18.0 (commit
5f2baf9d575cf732362594c998c399902942531f; the functions below are identical in v0.17.0, Axolotl's pin):
torchao/quantization/qat/fake_quantizer.py (Int4WeightFakeQuantizer._bf16_activations_forward,
IntxFakeQuantizer._per_token_forward: verbatim), torchao/quantization/qat/utils.py (_fake_quantize_per_token) and
torchao/quantization/quant_primitives.py (_Round, _get_reduction_params, _choose_qparams_affine's ASYMMETRIC branch,
_quantize_affine_no_dtype_cast, _dequantize_affine_no_dtype_check: verbatim, asserts and other branches dropped);
for MX: torchao/prototype/mx_formats/mx_tensor.py (_to_mx_rceil's eager fallback, to_mx's fp4 path, get_fp_scale,
to_dtype's fp4 path: verbatim; the fp4 packing into uint8 pairs, which is lossless, left out),
torchao/prototype/custom_fp_utils.py (_f32_to_floatx_unpacked, _floatx_unpacked_to_f32 for e2m1: verbatim) and
torchao/prototype/qat/mx.py (the autograd function, reshaping as there).

NVFP4 (qat: activation_dtype nvfp4, weight_dtype nvfp4): Axolotl 067b021 builds QATConfig(NVFP4WeightOnlyConfig()),
which torchao 0.17.0 (its pin) and 0.18.0 reject ("Unexpected base config"); jtune runs what torchao's own QAT API
defines for NVFP4, QATConfig(NVFP4DynamicActivationNVFP4WeightConfig()) as _infer_fake_quantize_configs maps it:
NVFP4FakeQuantizedLinear with NVFP4FakeQuantizeConfig(use_per_tensor_scale=True) for activations and weights
(torchao/prototype/qat/nvfp4.py, unchanged from v0.17.0 to main at 36027d82). Copied from v0.18.0 (5f2baf9d):
torchao/prototype/mx_formats/nvfp4_tensor.py (per_tensor_amax_to_scale, nvfp4_quantize: verbatim; NVFP4Tensor.to_nvfp4,
dequantize, get_hp_scales, _addmm_nvfp4_dispatch: verbatim for 2-d untransposed operands, scales unswizzled),
torchao/prototype/mx_formats/kernels.py (pack_uint4, unpack_uint4, f32_to_f4_unpacked, f4_unpacked_to_f32: verbatim)
and nvfp4.py's autograd function and NVFP4FakeQuantizedLinear.forward. v0.17.0 differs in two places, both named in
README: nvfp4_quantize's single-level branch divides (unused here: use_per_tensor_scale is on) and get_hp_scales
returns the scales in the operand's dtype (here fp32, as 0.18.0 and main). The one piece that cannot be torchao's
code is torch._scaled_mm on fp4 operands (cuBLAS, Blackwell only; no CPU kernel): _scaled_mm_nvfp4_emulated computes
its exact products in fp32, sums them in fp32 and rounds once to the output dtype; a Blackwell GPU may sum in another
order (the last bit of some outputs).

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


# --- torchao/prototype/custom_fp_utils.py (e2m1: ebits 2, mbits 1)
EBITS_F32, MBITS_F32 = 8, 23
F32_EXP_BIAS = 127


def _n_ones(n):
    return (1 << n) - 1


def _f32_to_floatx_unpacked(x, ebits, mbits):
    exp_bias = _n_ones(ebits - 1)
    max_int = _n_ones(ebits + mbits)
    sign_mask = 1 << (ebits + mbits)
    magic_adder = _n_ones(MBITS_F32 - mbits - 1)
    max_normal = 2 ** (_n_ones(ebits) - exp_bias) * (_n_ones(mbits + 1) / (2**mbits))
    min_normal = 2 ** (1 - exp_bias)
    denorm_exp = (F32_EXP_BIAS - exp_bias) + (MBITS_F32 - mbits) + 1
    denorm_mask_int = denorm_exp << MBITS_F32
    denorm_mask_float = torch.tensor(denorm_mask_int, dtype=torch.int32).view(torch.float32)
    x = x.view(torch.int32)
    sign = x & 0x80000000
    x = x ^ sign
    x = x.view(torch.float)
    saturate_mask = x >= max_normal
    denormal_mask = torch.logical_and(torch.logical_not(saturate_mask), x < min_normal)
    normal_mask = torch.logical_not(torch.logical_or(saturate_mask, denormal_mask))
    denormal_x = x + denorm_mask_float
    denormal_x = denormal_x.view(torch.int32)
    denormal_x -= denorm_mask_int
    denormal_x = denormal_x.to(torch.uint8)
    normal_x = x.view(torch.int32)
    mant_odd = (normal_x >> (MBITS_F32 - mbits)) & 1
    val_to_add = ((exp_bias - F32_EXP_BIAS) << MBITS_F32) + magic_adder
    normal_x += val_to_add
    normal_x += mant_odd
    normal_x = normal_x >> (MBITS_F32 - mbits)
    normal_x = normal_x.to(torch.uint8)
    x = torch.full_like(x, max_int, dtype=torch.uint8)
    x = torch.where(denormal_mask, denormal_x, x)
    x = torch.where(normal_mask, normal_x, x)
    sign_lp = sign >> (MBITS_F32 + EBITS_F32 - mbits - ebits)
    sign_lp = sign_lp.to(torch.uint8)
    sign_lp = sign_lp & sign_mask
    x = x | sign_lp
    return x.to(torch.uint8)


def _floatx_unpacked_to_f32(x, ebits, mbits):
    sign_mask = 1 << (ebits + mbits)
    exp_bias = _n_ones(ebits - 1)
    mantissa_mask = _n_ones(mbits)
    sign_lp = x & sign_mask
    x_pos = x ^ sign_lp
    zero_mask = x_pos == 0
    denormal_mask = torch.logical_and((x_pos > 0), ((x_pos >> mbits) == 0))
    exp_biased_lp = x_pos >> mbits
    exp_biased_f32 = exp_biased_lp - exp_bias + F32_EXP_BIAS
    exp_biased_f32 = exp_biased_f32.to(torch.int32) << MBITS_F32
    mantissa_lp_int32 = (x_pos & mantissa_mask).to(torch.int32)
    mantissa_f32 = mantissa_lp_int32 << (MBITS_F32 - mbits)
    result = exp_biased_f32 | mantissa_f32
    result[zero_mask] = 0
    denormal_exp_biased = 1 - exp_bias + F32_EXP_BIAS
    result[denormal_mask] = (denormal_exp_biased - mbits) << MBITS_F32  # mbits == 1 fast path
    f32_sign = sign_lp.to(torch.int32) << (MBITS_F32 - mbits + EBITS_F32 - ebits)
    result = result | f32_sign
    return result.view(torch.float)


# --- torchao/prototype/mx_formats/mx_tensor.py
E8M0_EXPONENT_BIAS = 127
E8M0_EXPONENT_NAN_VAL = 255
F4_E2M1_MAX = 6.0


def _to_mx_rceil(data_hp, max_abs, max_pos):
    descale = max_abs / max_pos
    exponent = torch.where(
        torch.isnan(descale), 255,
        torch.where(torch.isinf(descale), 254,
                    (torch.clamp(torch.ceil(torch.log2(descale)), min=-E8M0_EXPONENT_BIAS, max=E8M0_EXPONENT_BIAS)
                     + E8M0_EXPONENT_BIAS).to(torch.uint8)))
    rcp_fp32 = torch.where(
        exponent == 255, descale,
        torch.where(exponent == 254, 2**-127,
                    torch.where(exponent == 0, 1.0, torch.exp2(E8M0_EXPONENT_BIAS - exponent.to(torch.float32)))))
    data_lp = data_hp * rcp_fp32
    data_lp = torch.clamp(data_lp, min=-max_pos, max=max_pos)
    return exponent, data_lp


def to_mx_fp4(data_hp, block_size):
    # to_mx(data_hp, torch.float4_e2m1fn_x2, block_size, ScaleCalculationMode.RCEIL), unpacked codes
    orig_shape = data_hp.shape
    data_hp = data_hp.reshape(*orig_shape[:-1], orig_shape[-1] // block_size, block_size)
    max_abs = torch.amax(torch.abs(data_hp), -1).unsqueeze(-1)
    data_hp = data_hp.to(torch.float32)
    max_abs = max_abs.to(torch.float32)
    scale_e8m0_biased, data_lp = _to_mx_rceil(data_hp, max_abs, F4_E2M1_MAX)
    data_lp = data_lp.reshape(orig_shape)
    data_lp = _f32_to_floatx_unpacked(data_lp, 2, 1)
    scale_e8m0_biased = scale_e8m0_biased.squeeze(-1)  # uint8 holding the e8m0 bits
    return scale_e8m0_biased, data_lp


def get_fp_scale(scale_e8m0):
    s_offset = scale_e8m0.to(torch.int16) - E8M0_EXPONENT_BIAS
    two = torch.full_like(s_offset, 2.0, dtype=torch.float32)
    s_fp = torch.pow(two, s_offset)
    s_fp = torch.where(scale_e8m0 != E8M0_EXPONENT_NAN_VAL, s_fp, float("nan"))
    return s_fp


def mx_fp4_dequantize(codes, scale_e8m0, block_size, target_dtype):
    # to_dtype's fp4 path (row-major data)
    orig_shape = codes.shape
    f32 = _floatx_unpacked_to_f32(codes, 2, 1)
    data_hp = f32.to(target_dtype)
    data_hp = data_hp.reshape(-1, block_size)
    s_fp = get_fp_scale(scale_e8m0).reshape(-1, 1).to(target_dtype)
    data_hp = data_hp * s_fp
    return data_hp.reshape(orig_shape)


# --- torchao/prototype/qat/mx.py
class _MXQuantizedForwardFakeQuantizedBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, _input, weight, block_size):
        orig_shape = _input.shape
        _input_2d = _input.view(-1, orig_shape[-1])
        a_scale, a_codes = to_mx_fp4(_input_2d, block_size)
        w_scale, w_codes = to_mx_fp4(weight, block_size)
        a_hp = mx_fp4_dequantize(a_codes, a_scale, block_size, _input.dtype)
        w_hp = mx_fp4_dequantize(w_codes, w_scale, block_size, weight.dtype)
        ctx.save_for_backward(a_hp, w_hp)
        ctx.orig_shape = orig_shape
        out = torch.ops.aten.mm.default(a_hp, w_hp.t())
        out_shape = (*orig_shape[:-1], out.shape[-1])
        return out.view(*out_shape)

    @staticmethod
    def backward(ctx, grad_output):
        _input_2d, weight = ctx.saved_tensors
        grad_output_2d = grad_output.view(-1, grad_output.shape[-1])
        grad_input_2d = torch.mm(grad_output_2d, weight)
        grad_weight = torch.mm(grad_output_2d.t(), _input_2d)
        return grad_input_2d.view(*ctx.orig_shape), grad_weight, None



# --- NVFP4 (Axolotl's qat: {activation_dtype: nvfp4, weight_dtype: nvfp4}, as torchao's own QAT defines it)
# torchao/prototype/mx_formats/constants.py
F8E4M3_MAX = torch.finfo(torch.float8_e4m3fn).max  # 448.0
# torchao/prototype/mx_formats/nvfp4_tensor.py
E4M3_EPS = torch.finfo(torch.float8_e4m3fn).tiny


# torchao/prototype/mx_formats/kernels.py (verbatim)
def f32_to_f4_unpacked(x):
    return _f32_to_floatx_unpacked(x, 2, 1)


def f4_unpacked_to_f32(x):
    return _floatx_unpacked_to_f32(x, 2, 1)


def down_size(size):
    assert size[-1] % 2 == 0, f"{size} last dim not divisible by two"
    return (*size[:-1], size[-1] // 2)


def up_size(size):
    return (*size[:-1], size[-1] * 2)


def unpack_uint4(uint8_data):
    assert uint8_data.is_contiguous()
    shape = uint8_data.shape
    first_elements = (uint8_data & 0b1111).to(torch.uint8)
    second_elements = (uint8_data >> 4).to(torch.uint8)
    unpacked = torch.stack([first_elements, second_elements], dim=-1).view(up_size(shape))
    return unpacked


def pack_uint4(uint8_data):
    shape = uint8_data.shape
    assert shape[-1] % 2 == 0
    uint8_data = uint8_data.contiguous().view(-1)
    return (uint8_data[::2] | uint8_data[1::2] << 4).view(down_size(shape))


# torchao/prototype/mx_formats/nvfp4_tensor.py (verbatim)
def per_tensor_amax_to_scale(amax):
    return amax.to(torch.float32) / (F8E4M3_MAX * F4_E2M1_MAX)


def nvfp4_quantize(data_hp, block_size=16, per_tensor_scale=None):
    assert data_hp.dtype in (torch.bfloat16, torch.float), f"{data_hp.dtype} not supported"
    assert data_hp.size(-1) % block_size == 0, "K dim must be divisible by block_size"
    assert data_hp.is_contiguous(), "Only support contiguous data for now"
    assert block_size == 16, "NVFP4 requires block_size=16"
    orig_shape = data_hp.shape
    data_hp = data_hp.float().reshape(orig_shape[0], -1, block_size)
    max_abs = torch.amax(torch.abs(data_hp), dim=-1)
    block_scale = max_abs / F4_E2M1_MAX
    out_scales = None
    if per_tensor_scale is None:
        block_scale_fp8 = torch.clamp(block_scale, min=E4M3_EPS, max=F8E4M3_MAX).to(torch.float8_e4m3fn)
        block_scale_fp32 = block_scale_fp8.to(torch.float32)
        data_scaled = data_hp * (1.0 / block_scale_fp32).unsqueeze(-1)
        out_scales = block_scale_fp8
    else:
        block_scale_fp32 = block_scale.to(torch.float32)
        if len(per_tensor_scale.shape) == 3:
            per_tensor_scale = per_tensor_scale.squeeze(-1)
        scaled_block_scales = block_scale_fp32 / per_tensor_scale
        scaled_block_scales_fp8 = torch.clamp(scaled_block_scales, min=E4M3_EPS, max=F8E4M3_MAX).to(
            torch.float8_e4m3fn)
        scaled_block_scales_fp32 = scaled_block_scales_fp8.to(torch.float32)
        reciprocal_scale = (1.0 / per_tensor_scale) / scaled_block_scales_fp32
        data_scaled = data_hp * reciprocal_scale.unsqueeze(-1)
        out_scales = scaled_block_scales_fp8
    data_scaled = torch.clamp(data_scaled, -F4_E2M1_MAX, F4_E2M1_MAX)
    data_scaled = data_scaled.view(orig_shape)
    data_lp = f32_to_f4_unpacked(data_scaled)
    data_lp = pack_uint4(data_lp)
    return out_scales, data_lp


class NVFP4Tensor:
    """NVFP4Tensor's data and the methods the QAT path calls, for 2-d row-major operands: to_nvfp4 (the non-triton
    branch, scales unswizzled: swizzling is a lossless layout for the GEMM), dequantize and get_hp_scales (verbatim
    for an untransposed tensor). The tensor-subclass dispatch (t, view) is not needed by the emulated GEMM below."""

    def __init__(self, qdata, scale, block_size, orig_dtype, per_tensor_scale):
        self.qdata, self.scale, self.block_size = qdata, scale, block_size
        self.orig_dtype, self.per_tensor_scale = orig_dtype, per_tensor_scale
        self.shape = (qdata.shape[0], qdata.shape[1] * 2)

    @staticmethod
    def to_nvfp4(data_hp, block_size=16, per_tensor_scale=None):
        assert len(data_hp.shape) in (2, 3), "unsupported"
        leading_dims, M, K = data_hp.shape[:-2], data_hp.shape[-2], data_hp.shape[-1]
        blockwise_scales, data_lp = nvfp4_quantize(data_hp, block_size, per_tensor_scale)
        scale_M, scale_K = M, K // block_size
        blockwise_scales = blockwise_scales.view(*leading_dims, scale_M, scale_K)
        return NVFP4Tensor(data_lp, blockwise_scales, block_size, data_hp.dtype, per_tensor_scale)

    def dequantize(self, output_dtype=None):
        leading_dims, M, K = self.shape[:-2], self.shape[-2], self.shape[-1]
        data = self.qdata
        data_unpacked = unpack_uint4(data.contiguous().view(torch.uint8))
        data_f32 = f4_unpacked_to_f32(data_unpacked)
        data_f32 = data_f32.view(*leading_dims, M, K // self.block_size, self.block_size)
        scale_e4m3_reshaped = self.get_hp_scales().view(*leading_dims, M, K // self.block_size, 1)
        data_scaled = data_f32 * scale_e4m3_reshaped.to(torch.float32)
        result = data_scaled.view(*leading_dims, M, K).to(output_dtype)
        return result

    def get_hp_scales(self):
        scale_e4m3 = self.scale
        return (scale_e4m3.to(torch.float) if self.per_tensor_scale is None
                else self.per_tensor_scale * scale_e4m3.to(torch.float))


def _scaled_mm_nvfp4_emulated(a, b, out_dtype):
    # The one piece that is not torchao's code: torch._scaled_mm on fp4 operands with e4m3 block scales (cuBLAS's
    # block-scaled GEMM, Blackwell only; torch has no CPU kernel for it). Each operand's element times its block scale
    # (no per-tensor scale: _addmm_nvfp4_dispatch applies that afterwards) is exact in fp32 (2 + 4 significant bits);
    # the products are summed in fp32 (use_fast_accum=False) and the sum rounded once to out_dtype.
    def operand(t):
        M, K = t.shape
        vals = f4_unpacked_to_f32(unpack_uint4(t.qdata.contiguous())).view(M, K // 16, 16)
        return (vals * t.scale.to(torch.float32).view(M, K // 16, 1)).view(M, K)
    return torch.mm(operand(a), operand(b).t()).to(out_dtype)


def _addmm_nvfp4_dispatch(a, b, bias=None):
    # nvfp4_tensor.py _addmm_nvfp4_dispatch (b given untransposed, [N, K]): per-tensor scales merged and applied
    # after the GEMM in the output dtype, the bias added after that.
    a_scale = a.per_tensor_scale
    b_scale = b.per_tensor_scale
    if a_scale is not None and b_scale is not None:
        scale_result = a_scale * b_scale
    elif a_scale is not None or b_scale is not None:
        scale_result = a_scale if a_scale is not None else b_scale
    else:
        scale_result = None
    should_add_bias_separately = (scale_result is not None or a.orig_dtype == torch.float32) and (bias is not None)
    assert bias is None or should_add_bias_separately, "bias fused into _scaled_mm is not emulated"
    result = _scaled_mm_nvfp4_emulated(a, b, a.orig_dtype)
    if scale_result is not None:
        result = result * scale_result.to(a.orig_dtype)
    if should_add_bias_separately:
        result = result + bias.to(a.orig_dtype)
    return result


# torchao/prototype/qat/nvfp4.py (verbatim but for the dispatch above; use_swizzled_scales and use_triton_kernel
# change neither values nor gradients on this path: the weight is always quantized by nvfp4_quantize there)
class _NVFP4QuantizedForwardFakeQuantizedBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, _input, weight, bias, use_per_tensor_scale):
        if use_per_tensor_scale:
            tensor_amax = torch.max(torch.abs(_input))
            per_tensor_scale = per_tensor_amax_to_scale(tensor_amax)
        else:
            per_tensor_scale = None
        _input = NVFP4Tensor.to_nvfp4(_input, per_tensor_scale=per_tensor_scale)
        if use_per_tensor_scale:
            tensor_amax = torch.max(torch.abs(weight))
            per_tensor_scale = per_tensor_amax_to_scale(tensor_amax)
        else:
            per_tensor_scale = None
        weight = NVFP4Tensor.to_nvfp4(weight, per_tensor_scale=per_tensor_scale)
        ctx.saved = (_input, weight)
        return _addmm_nvfp4_dispatch(_input, weight, bias)

    @staticmethod
    def backward(ctx, grad_output):
        _input, weight = ctx.saved
        _input = _input.dequantize(_input.orig_dtype)
        weight = weight.dequantize(weight.orig_dtype)
        grad_input = torch.mm(grad_output, weight)
        grad_weight = torch.mm(grad_output.t(), _input)
        return grad_input, grad_weight, None, None


def nvfp4_fake_quantized_linear(x, weight, bias, use_per_tensor_scale=True):
    # NVFP4FakeQuantizedLinear.forward (verbatim)
    if x.dim() == 3:
        batch_size = x.shape[0]
        x = x.view(-1, x.shape[-1])
    else:
        batch_size = None
    fq = _NVFP4QuantizedForwardFakeQuantizedBackward.apply(x, weight, bias, use_per_tensor_scale)
    assert fq.dtype == x.dtype
    if batch_size is not None:
        return fq.view(batch_size, -1, fq.shape[-1])
    else:
        return fq


def nvfp4_case(name, dtype, x0, w0, g0, b0):
    x = x0.to(dtype).detach().clone().requires_grad_(True)
    w = w0.to(dtype).detach().clone().requires_grad_(True)
    b = None if b0 is None else b0.to(dtype).detach().clone().requires_grad_(True)
    y = nvfp4_fake_quantized_linear(x, w, b)
    y.backward(g0.to(dtype))
    c = {"name": name, "dtype": str(dtype).replace("torch.", ""), "group_size": 16,
         "activation": "nvfp4", "weight": "nvfp4",
         "x": b64f(x), "w": b64f(w), "grad_out": b64f(g0.to(dtype)),
         "y": b64f(y), "grad_x": b64f(x.grad), "grad_w": b64f(w.grad),
         "x_shape": list(x.shape), "w_shape": list(w.shape)}
    if b is not None:
        assert b.grad is None  # the autograd function returns no gradient for the bias: torchao leaves it untrained
        c["bias"] = b64f(b)
        c["bias_grad"] = None
    return c


def mx_case(name, dtype, x0, w0, g0):
    x = x0.to(dtype).detach().clone().requires_grad_(True)
    w = w0.to(dtype).detach().clone().requires_grad_(True)
    y = _MXQuantizedForwardFakeQuantizedBackward.apply(x, w, 32)
    y.backward(g0.to(dtype))
    return {"name": name, "dtype": str(dtype).replace("torch.", ""), "group_size": 32,
            "activation": "mxfp4", "weight": "mxfp4",
            "x": b64f(x), "w": b64f(w), "grad_out": b64f(g0.to(dtype)),
            "y": b64f(y), "grad_x": b64f(x.grad), "grad_w": b64f(w.grad),
            "x_shape": list(x.shape), "w_shape": list(w.shape)}


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
    # MX: blocks of 32 with exact ties of e2m1 (0.25, 0.75, ..., 5 after scaling), a zero block, a negative zero.
    xm = x0.clone() * 3
    xm[0, 3, :32] = torch.tensor([6.0, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0] * 4) * torch.tensor([1.0, -1.0] * 16)
    xm[1, 0, 32:] = 0.0
    xm[1, 0, 40] = -0.0
    wm = w0.clone()
    wm[2, :32] = torch.linspace(-0.3, 0.3, 32)
    for dtype in (torch.float32, torch.bfloat16):
        cases.append(mx_case("mxfp4-mxfp4", dtype, xm, wm, g0))
    # NVFP4: blocks of 16 with e2m1 ties (relative to the block's scale), a zero block, a negative zero, a block far
    # below the tensor's maximum (its e4m3 scale clamped up to e4m3's smallest normal), one block at the tensor's
    # maximum (scale 448), and a bias (added after the per-tensor scaling; it gets no gradient).
    xn = x0.clone() * 2
    xn[0, 3, :16] = torch.tensor([6.0, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0] * 2) * torch.tensor([1.0, -1.0] * 8)
    xn[0, 3, 16:32] = torch.tensor([3.0, 0.125, 0.375, 0.625, 0.875, 1.25, 1.75, 2.5] * 2)
    xn[1, 0, 32:48] = 0.0
    xn[1, 0, 40] = -0.0
    xn[1, 1, 48:64] = torch.linspace(-1e-4, 1e-4, 16)
    xn[1, 4, 5] = 9.0
    wn = w0.clone()
    wn[2, :16] = torch.linspace(-0.3, 0.3, 16)
    wn[4, 16:32] = 1e-6
    bn = torch.randn(out_f) * 0.1
    for dtype in (torch.float32, torch.bfloat16):
        cases.append(nvfp4_case("nvfp4-nvfp4", dtype, xn, wn, g0, None))
        cases.append(nvfp4_case("nvfp4-nvfp4-bias", dtype, xn, wn, g0, bn))
    path = os.path.join(os.path.dirname(__file__), "..", "..", "quant", "src", "test", "resources", "fixtures",
                        "qat_expected.json")
    with open(path, "w") as f:
        json.dump({"torch": torch.__version__, "torchao": "v0.18.0 (5f2baf9d), code copied",
                   "cases": cases}, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(path), len(cases), "cases")


if __name__ == "__main__":
    main()
