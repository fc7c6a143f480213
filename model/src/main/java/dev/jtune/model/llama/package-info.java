/**
 * The decoder of every supported family, numerically faithful to transformers' modeling files: Llama, Mistral,
 * Qwen2, Qwen3, Gemma 2, Gemma 3 (text) and Phi-3 ({@link dev.jtune.model.llama.Family}).
 *
 * <p>{@link dev.jtune.model.llama.LlamaConfig} reads config.json (transformers 4 or 5 keys) into the Llama shape plus
 * an {@link dev.jtune.model.llama.Architecture}, the family's switches: biases, q/k norms, Gemma's norms and
 * soft-capping, sliding and local layers, partial rotary, fused projections; {@link
 * dev.jtune.model.llama.LlamaConfig#tensors()} lists the checkpoint's tensors ({@link dev.jtune.model.llama.TensorSpec}).
 * {@link dev.jtune.model.llama.LlamaModel} loads weights from any {@link dev.jtune.model.llama.WeightSource} by their
 * transformers names and computes logits in fp32, fp16 or bf16 (its weights in that dtype, or, through
 * {@link dev.jtune.model.llama.LlamaModel#loadFp32Weights}, held in fp32 and cast to it where each is used: a trainer's
 * fp32 master weights under mixed precision): {@link dev.jtune.model.llama.DecoderLayer} =
 * {@link dev.jtune.model.llama.RmsNorm} → {@link dev.jtune.model.llama.Attention} (rotary, grouped-query attention,
 * windows, soft-capping) → RmsNorm → {@link dev.jtune.model.llama.Mlp} (SwiGLU or GeGLU), with Gemma's extra norms.
 * Every projection is a {@link dev.jtune.model.llama.Linear}, the seam where LoRA and NF4 plug in (a
 * {@link dev.jtune.model.llama.DenseLinear} also takes a {@link dev.jtune.model.llama.FakeQuant}: quantization-aware
 * training's fake quantization of its input and weight, or of the whole product where the scheme computes it, as
 * NVFP4's scaled GEMM); {@link
 * dev.jtune.model.llama.LlamaModel#linears()} and {@link dev.jtune.model.llama.LlamaModel#tensors()} name them all.
 *
 * <p>One decoder stack: {@link dev.jtune.model.llama.LlamaModel#decode} (embedding cast to the compute dtype, every
 * layer in order, each through a {@link dev.jtune.model.llama.LayerPolicy}) serves training, evaluation, scoring and
 * generation; a {@link dev.jtune.model.llama.ForwardContext} carries the rotary tables (two for Gemma 3), the packing
 * segments (attended causally, or bidirectionally for the diffusion objective) and the optional
 * {@link dev.jtune.model.llama.KvCache} that attention reads and extends.
 */
package dev.jtune.model.llama;
