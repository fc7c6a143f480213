/**
 * How the verbs set up a run, in one place: {@link dev.jtune.trainer.setup.RunSettings} reads the config keys the
 * verbs use once, into types; {@link dev.jtune.trainer.setup.ModelSpec} says what model to build (checkpoint,
 * dtype, NF4, {@link dev.jtune.trainer.setup.AdapterSource adapter}, FSDP sharding of the base) and
 * {@link dev.jtune.trainer.setup.AssembledModel#load} builds it — for {@code train}, {@code inference} and
 * {@code score} alike. {@link dev.jtune.trainer.setup.ConfigChecks#check} is what {@code preprocess} and {@code train}
 * check right after a config loads, before any data work: every check that needs neither the data nor a step; the
 * settings readers below give it their problems as {@link dev.jtune.trainer.setup.KeyProblem}s, one per key.
 *
 * <p>{@link dev.jtune.trainer.setup.DeepSpeed} reads Axolotl's {@code deepspeed:} JSON (or knows Axolotl's shipped
 * files by name), maps ZeRO 0-2 to data parallel and ZeRO-3 to FSDP, and refuses what would change the result;
 * {@code RunSettings.refuseUnsupportedTraining} checks it (and the precision/adapter combinations jtune does not run)
 * when the config loads, for {@code train} and {@code preprocess} alike. {@link dev.jtune.trainer.setup.LoftqConfig}
 * reads {@code peft: {loftq_config: ...}} and names what LoftQ is refused with.
 *
 * <p>{@link dev.jtune.trainer.setup.ParallelLayout} maps Axolotl's parallelism degrees onto jtune's processes: a
 * tensor/context-parallel group's work is computed in one process, the processes are the data-parallel ranks
 * (dp_replicate × dp_shard) by Axolotl's own layout rule, so the global batch is Axolotl's; {@code ConfigChecks}
 * refuses what Axolotl's validators refuse and, at {@code train}, a process count Axolotl's rule does not accept.
 *
 * <p>Growing the vocabulary: {@link dev.jtune.trainer.setup.VocabSettings} reads Axolotl's {@code tokens},
 * {@code special_tokens}, {@code added_tokens_overrides}, {@code resize_token_embeddings_to_32x} and
 * {@code mean_resizing_embeddings}, writes the edited tokenizer and plans a
 * {@link dev.jtune.trainer.setup.VocabGrowth} (or refuses: a tokenizer larger than the model without those keys,
 * growth under an adapter without trainable embed_tokens/lm_head); {@code ModelSpec.withVocab} passes it to
 * {@code AssembledModel.load}, which grows embed_tokens and lm_head as transformers' {@code resize_token_embeddings}
 * does (also to the rows of a saved adapter's copies).
 *
 * <p>Quantization-aware training: {@link dev.jtune.trainer.setup.QatSettings} reads Axolotl's {@code qat:} block as
 * Axolotl maps it onto torchao (int8/int4 and mxfp4/mxfp4 run through {@code quant.Qat}; nvfp4/nvfp4, which Axolotl
 * 067b021's torchao rejects, as torchao's own NVFP4 QAT defines it; every other value refused with Axolotl's own
 * outcome named), checked by ConfigChecks with the group size against base_model's widths.
 * {@link dev.jtune.trainer.setup.Fp8Settings} reads {@code fp8} and {@code fp8_enable_fsdp_float8_all_gather}
 * (full fine-tuning through {@code quant.Fp8}; with an adapter or qat refused in ConfigChecks).
 *
 * <p>The diffusion objective: {@link dev.jtune.trainer.setup.DiffusionSettings} reads the DiffusionPlugin's
 * {@code diffusion:} block as Axolotl's {@code DiffusionConfig} validates it (ConfigChecks reports its problems),
 * resolves the mask token against the tokenizer as Axolotl's {@code resolve_mask_token_id} does (adding it to the run's
 * vocabulary edits where Axolotl adds it) and builds {@code train.Diffusion} for the run.
 *
 * <p>Sparse fine-tuning: {@link dev.jtune.trainer.setup.SparseFinetuning} reads the LLMCompressor plugin's
 * {@code llmcompressor:} block (a recipe inline, from a file or as YAML text, parsed as llm-compressor's
 * {@code Recipe.from_dict}; ConstantPruningModifier run, every other modifier refused by name) and selects the masked
 * weights as llm-compressor's {@code match_targets}; ConfigChecks checks the targets against base_model's parameter
 * names.
 */
package dev.jtune.trainer.setup;
