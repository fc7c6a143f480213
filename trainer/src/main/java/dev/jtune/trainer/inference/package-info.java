/**
 * What the {@code inference} verb needs around {@link dev.jtune.model.generate.Generator}:
 * {@link dev.jtune.trainer.inference.PromptFormat} (which chat template or prompt a config implies, and the
 * stop ids) and {@link dev.jtune.trainer.inference.AdapterHook} (the single place where LoRA adapters are
 * connected to inference).
 */
package dev.jtune.trainer.inference;
