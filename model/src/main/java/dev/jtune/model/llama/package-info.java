/**
 * The Llama-family decoder, numerically faithful to transformers' {@code LlamaForCausalLM}.
 *
 * <p>{@link dev.jtune.model.llama.LlamaConfig} reads config.json (Llama 1/2/3, GQA, rope scaling linear and
 * llama3, tied embeddings, Mistral). {@link dev.jtune.model.llama.LlamaModel} loads weights from any
 * {@link dev.jtune.model.llama.WeightSource} by their transformers names and computes logits in fp32, fp16
 * or bf16: {@link dev.jtune.model.llama.DecoderLayer} = RMSNorm → {@link dev.jtune.model.llama.Attention}
 * (rotary, grouped-query SDPA) → RMSNorm → {@link dev.jtune.model.llama.Mlp} (SwiGLU). Every projection is a
 * {@link dev.jtune.model.llama.Linear}, the seam where LoRA and NF4 plug in.
 *
 * <p>One decoder stack: {@link dev.jtune.model.llama.LlamaModel#decode} (embedding cast to the compute dtype, every
 * layer in order, each through a {@link dev.jtune.model.llama.LayerPolicy}) serves training, evaluation, scoring and
 * generation; a {@link dev.jtune.model.llama.ForwardContext} carries the rotary tables, the packing segments and the
 * optional {@link dev.jtune.model.llama.KvCache} that attention reads and extends.
 */
package dev.jtune.model.llama;
