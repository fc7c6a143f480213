/**
 * What the {@code inference} verb needs around {@link dev.jtune.model.generate.Generator}:
 * {@link dev.jtune.trainer.inference.PromptFormat} (which chat template or prompt a config implies, and the
 * stop ids). Adapters ({@code --lora-model-dir}) are applied with {@code dev.jtune.lora.LoraModel}, over an NF4
 * base when the config quantizes it, as in training.
 */
package dev.jtune.trainer.inference;
