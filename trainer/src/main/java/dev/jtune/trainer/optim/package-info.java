/**
 * Optimizer arithmetic, transcribed from PyTorch and transformers so that results match theirs.
 *
 * <ul>
 *   <li>{@link dev.jtune.trainer.optim.AdamW}: {@code torch.optim.AdamW} defaults (single-tensor path,
 *       decoupled weight decay, per-parameter weight-decay groups), state save/load as safetensors; its
 *       {@link dev.jtune.trainer.optim.AdamW.Variant}s add bitsandbytes' AdamW with 32-bit state and with
 *       blockwise 8-bit state ({@code adamw_bnb_8bit}), whose kernels, maps and constants {@link
 *       dev.jtune.trainer.optim.Bnb} describes. Checkpoint layout of the 8-bit state: {@code <name>.state1},
 *       {@code <name>.state2} (U8 codes), {@code <name>.absmax1}, {@code <name>.absmax2} (F32, one per 256 values),
 *       see {@code AdamW.write}. torchao's AdamW8bit and AdamW4bit ({@code adamw_torch_8bit}/{@code _4bit}: 4-bit
 *       codes packed two a byte, one scale per 128 values) are variants too.</li>
 *   <li>{@link dev.jtune.trainer.optim.JaggedRestarts}: Axolotl's JaggedLRRestartScheduler factor
 *       ({@code jagged_restart_steps}), applied over an {@code LrSchedule}.</li>
 *   <li>{@link dev.jtune.trainer.optim.Muon}: Axolotl's {@code optimizer: muon} (dion's Muon on matrices, bf16
 *       Newton-Schulz, AdamW on embeddings, head and vectors); one process; momentum checkpointed in
 *       {@code optimizer.safetensors.muon}.</li>
 *   <li>{@link dev.jtune.trainer.optim.LrSchedule}: transformers' linear, cosine, constant and
 *       constant-with-warmup multipliers, and Axolotl's warmup-step rule.</li>
 *   <li>{@link dev.jtune.trainer.optim.GradClipping}: {@code clip_grad_norm_} (global L2 norm, pre-clip norm
 *       reported).</li>
 *   <li>{@link dev.jtune.trainer.optim.GradScaler}: fp16 dynamic loss scaling as {@code torch.amp.GradScaler}.</li>
 *   <li>{@link dev.jtune.trainer.optim.Gradients}, {@link dev.jtune.trainer.optim.Tensors}: gradient access
 *       without DJL's handle leaks, and {@code Gradients.of}, one graph's gradients returned rather than
 *       accumulated ({@code torch.autograd.grad}); in-place overwrite of tensors (checkpoint restore).</li>
 *   <li>{@link dev.jtune.trainer.optim.Flat}: trainable tensors or their gradients as one flat vector, the unit
 *       collectives move.</li>
 *   <li>{@link dev.jtune.trainer.optim.ShardedAdamW}: FSDP's AdamW over reduce-scattered gradient chunks, with
 *       the global-norm clip, sharded state, and a full (world-size free) state in checkpoints; optionally the
 *       decoder layers' trainable tensors themselves live only as chunks, gathered per layer for use (their storage
 *       freed between uses) and their gradients handed in per layer ({@code addGradients}). With 8-bit state, tensors
 *       and chunks are aligned to 256 values in the flat layout, so that every rank's piece of a tensor is made of
 *       whole bitsandbytes blocks and the sharded update equals the unsharded one bit for bit.</li>
 * </ul>
 *
 * <p>The in-place updates run as TorchScript ({@code optim.torchscript.py}) with autograd off. Every variant but
 * Muon's AdamW also updates bf16 (bf16 full fine-tuning; not torchao's 4-bit) and fp16 parameters ({@code float16:
 * true}) as its own code does: torch's per-op rounding with moments {@code zeros_like} the weight, torchao's fp32
 * update rounded once, bitsandbytes' kernels with {@code T} the parameter's type (fp32 state); see
 * {@code AdamW.Variant.updatesBf16Weights} / {@code updatesFp16Weights}.
 */
package dev.jtune.trainer.optim;
