/**
 * The training loop and its seams.
 *
 * <p>Entry point: {@link dev.jtune.trainer.train.Trainer#run(TrainerOptions, TrainableModel, BatchPlan, BatchPlan,
 * java.nio.file.Path, java.io.PrintStream)} with {@link dev.jtune.trainer.train.TrainerOptions} (read from the
 * config's trainer keys with Axolotl's defaults by {@link dev.jtune.trainer.train.TrainerOptions#from}).
 *
 * <p>Seams: {@link dev.jtune.trainer.train.TrainableModel} (forward model, trainable fp32 tensors by name — or bf16
 * ones, trained in place with bf16 AdamW moments, in bf16 full fine-tuning, or fp16 ones trained in place without
 * loss scaling under {@code float16: true} ({@code TrainerOptions.fp16InPlace}); fp32 master weights of a model
 * computing in bf16/fp16 under FSDP, DeepSpeed or fp16 —
 * weight export; {@link dev.jtune.trainer.train.FullFineTuning} is the full fine-tuning one) and
 * {@link dev.jtune.trainer.train.BatchPlan} (deterministic random-access micro-batches).
 *
 * <p>Inside: {@link dev.jtune.trainer.train.ForwardBackward} runs one micro-batch through the model's one decoder
 * stack ({@code LlamaModel.decode}) with a per-layer policy (dropout seed, no-grad and scoped memory, recompute for
 * gradient checkpointing, {@link dev.jtune.trainer.train.FsdpLayers} gather/free) and walks backward layer by
 * layer; its head and loss run in chunks of trained tokens, each chunk's backward at once, so that the whole
 * [tokens, vocab] logits never exist (what Liger's fused linear cross-entropy and cut cross-entropy do); the step talks to one {@code Optimizer} (AdamW or its sharded form); {@link dev.jtune.trainer.train.Metrics}
 * and {@link dev.jtune.trainer.train.StepLog} write what is logged; a checkpoint's non-tensor state is a
 * {@link dev.jtune.trainer.train.TrainingState}.
 *
 * <p>Axolotl's training-control keys: {@link dev.jtune.trainer.train.UnfrozenParameters} ({@code unfrozen_parameters}:
 * a {@code TrainableModel} of which only some tensors, or rows, train), {@link dev.jtune.trainer.train.LengthGrouped}
 * ({@code group_by_length}: transformers' length-grouped order as a {@code BatchPlan}), and inside the loop
 * {@code EarlyStopping} ({@code early_stopping_patience}, {@code load_best_model_at_end}) and {@code LossWatchdog}
 * ({@code loss_watchdog_threshold}/{@code _patience}), read into {@link dev.jtune.trainer.train.TrainerOptions};
 * {@link dev.jtune.trainer.train.Lisa} (Axolotl's LISA callback: a few decoder layers train at a time, the others
 * frozen in the optimizer) and {@link dev.jtune.trainer.train.ReLora} (Axolotl's ReLoRA: merge, re-initialise and
 * prune at each jagged restart; the run ends in the merged model); {@link dev.jtune.trainer.train.Eaft} ({@code use_eaft}:
 * Axolotl's entropy-weighted token loss, in {@code ForwardBackward}'s loss); {@link dev.jtune.trainer.train.Diffusion}
 * (Axolotl's DiffusionPlugin: {@link dev.jtune.trainer.train.DiffusionNoise} masks each row with the draws of a
 * {@link dev.jtune.trainer.train.DiffusionDraw}, the model reads it with bidirectional attention, and the masked tokens'
 * weighted cross-entropy replaces the next-token loss in {@code ForwardBackward}).
 * Axolotl's entropy-weighted token loss, in {@code ForwardBackward}'s loss); {@link dev.jtune.trainer.train.ConstantPruning}
 * (the LLMCompressor plugin's ConstantPruningModifier: a {@code TrainableModel} whose selected weights keep their zeros,
 * masked after each optimizer step through {@code TrainableModel.stepEnds}).
 *
 * <p>Output: {@code output_dir/metrics.jsonl} (one JSON object per logged step and per evaluation; with
 * {@code use_tensorboard: true} the same numbers as TensorBoard events under {@code output_dir/runs}, as HF
 * Trainer writes them) and
 * {@code output_dir/checkpoint-N/} ({@link dev.jtune.trainer.train.Checkpoints}: weights, optimizer.safetensors,
 * scheduler.json, rng_state.json, data_state.json, [scaler.json], trainer_state.json), written atomically;
 * {@code resume_from_checkpoint: auto|PATH} continues bit for bit (fp32, CPU). SIGTERM checkpoints at the next
 * step boundary and returns; NaN/inf loss without a GradScaler throws
 * {@link dev.jtune.trainer.train.TrainingDivergedException}, and so does a non-finite gradient norm, except under
 * {@code float16: true}, where, as in torch, the clipped step runs (an overflowed fp16 norm zeroes the gradients).
 */
package dev.jtune.trainer.train;
