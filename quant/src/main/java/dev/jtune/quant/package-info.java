/**
 * Frozen base weights in NF4 with double quantization (QLoRA's {@code load_in_4bit}) or in LLM.int8()
 * ({@code load_in_8bit}), bit-compatible with bitsandbytes' torch reference backend.
 *
 * <p>Public surface:
 * <ul>
 *   <li>{@link dev.jtune.quant.Nf4Quantizer}: {@code quantize(float[], long[] shape, Dtype)} to an
 *       {@link dev.jtune.quant.Nf4Tensor}, and the pure-Java {@code dequantize}/{@code dequantizeFp32}/{@code absmax};
 *   <li>{@link dev.jtune.quant.Nf4Tensor}: packed codes (first element in the high nibble), uint8 absmax codes, fp32
 *       nested scales, offset, the NF4 table and the 8-bit dynamic map;
 *   <li>{@link dev.jtune.quant.Nf4Linear}: a {@code Linear} holding only the quantized form in native memory
 *       (≈0.516 byte a weight plus 1.1 KB a layer), dequantizing in libtorch ({@code nf4.torchscript.py}) on each
 *       forward; the input gets a gradient, the weight none. The models {@code Nf4.linearFactory()} builds
 *       dequantize into {@link dev.jtune.quant.Nf4Linear.SharedBuffers}, one buffer per projection role for all
 *       layers, refilled by {@code prepareBackward} before a layer's backward: a step holds one layer's dense weights;
 *   <li>{@link dev.jtune.quant.Nf4Dequantizer}: one weight's small statistics in native memory, dequantizing
 *       (or multiplying by) packed and absmax codes given per call, e.g. all-gathered from FSDP shards; same kernel
 *       and bits as {@code Nf4Linear};
 *   <li>{@link dev.jtune.quant.Nf4}: the tables, {@code linearFactory(Predicate)} for {@code LlamaModel.load}
 *       (default: every linear but {@code lm_head});
 *   <li>{@link dev.jtune.quant.Bnb4bitLayout}: bitsandbytes' safetensors keys ({@code X.weight},
 *       {@code .absmax}, {@code .quant_map}, {@code .nested_absmax}, {@code .nested_quant_map},
 *       {@code .quant_state.bitsandbytes__nf4}), read and write; errors are {@link
 *       dev.jtune.quant.Bnb4bitFormatException}.
 *   <li>{@link dev.jtune.quant.Nf4Checkpoint}: a transformers directory saved with bitsandbytes 4-bit NF4
 *       ({@code quantization_config}), as a {@code WeightSource} (dense shapes, dequantized values) and with
 *       {@code linearFactory()}, which builds {@link dev.jtune.quant.Nf4Linear}s from the stored tensors.
 *   <li>{@link dev.jtune.quant.Int8} ({@code load_in_8bit}): {@code linearFactory()} quantizing every linear but
 *       {@code lm_head} to bitsandbytes' LLM.int8() form, {@link dev.jtune.quant.Int8Tensor} (int8 codes {@code CB},
 *       fp32 row absmax {@code SCB}) by {@link dev.jtune.quant.Int8Quantizer} (bit-identical to bitsandbytes' torch
 *       backend), and {@link dev.jtune.quant.Int8Linear}: 1 byte a weight + 4 bytes a row; its forward is
 *       {@code MatMul8bitLt}'s on CUDA (int8 activations by row, outlier columns |x| ≥ 6 in 16-bit, exact int32
 *       products, bitsandbytes' CUDA dequantization; {@code int8.torchscript.py}), its input gradient
 *       {@code grad · CB·SCB/127}, the dequantized weight kept in {@link dev.jtune.quant.Nf4Linear.SharedBuffers}.
 *       Transcribed in {@code tools/reference/int8_reference.py}, whose fixture the tests match bit for bit;
 *   <li>{@link dev.jtune.quant.Int8Checkpoint}: a directory transformers saved from a {@code load_in_8bit} model
 *       ({@code X.weight} int8, {@code X.SCB}, {@code X.weight_format}), as a {@code WeightSource} (weights
 *       dequantized as transformers does, {@code CB · SCB · 7.874015718698502e-3}) and with {@code linearFactory()}
 *       over the stored codes.
 *   <li>{@link dev.jtune.quant.Qat} (Axolotl's {@code qat:}): torchao's fake quantization for quantization-aware
 *       training, a {@code FakeQuant} that {@code attach} puts on every dense projection of a model ({@code lm_head}
 *       included) and {@code detach} removes (torchao's convert); the schemes of {@link dev.jtune.quant.QatScheme}:
 *       int8 per-token activations with int4 per-group weights, MXFP4 activations and weights, and NVFP4 activations
 *       and weights (torchao's NVFP4FakeQuantizedLinear, per-tensor scales: its block-scaled fp4 GEMM emulated in the
 *       forward) ({@code qat.torchscript.py}), each bit for bit torchao v0.18.0's code in forward and backward
 *       ({@code tools/reference/qat_expected.py}); {@code setEnabled} is Axolotl's QATCallback switch.
 *   <li>{@link dev.jtune.quant.Fp8} (Axolotl's {@code fp8: true}): torchao's Float8Linear, tensorwise recipe,
 *       emulated (e4m3 input and weight, e5m2 output gradient, per-tensor dynamic scales, fp32 GEMMs;
 *       {@code fp8.torchscript.py}), bit for bit torchao v0.18.0 in forward and backward
 *       ({@code tools/reference/fp8_expected.py}); {@code attach} converts the linears accelerate's filter keeps
 *       ({@code converted}); the output gradient's quantization runs as an {@code Autograd.Deferred} step.
 * </ul>
 *
 * <p>What "bit-identical" covers. The reference is bitsandbytes' pure-torch backend
 * ({@code backends/default/ops.py}, used for {@code quantize_4bit} on CPU), cross-checked against a transcription run on
 * torch 1.13 ({@code tools/reference/nf4_reference.py}). Known differences from other bitsandbytes paths: the CUDA
 * kernels are built with {@code --use_fast_math} (approximate {@code 1/absmax}), write code 0 rather than 7 for an
 * all-zero block (0 · inf = NaN falls through {@code dQuantizeNF4}'s tree), multiply rather than divide in the last
 * partial block, and their 8-bit search sends exact midpoint ties to the even index; the native CPU
 * {@code quantize_blockwise} uses a 65536-bin lookup table, not the exact nearest code. The offset is
 * {@code absmax.mean()}, a reduction whose summation order differs between torch builds; jtune rounds a double sum,
 * which equalled torch's value in every fixture case but may differ by one ulp elsewhere.
 */
package dev.jtune.quant;
