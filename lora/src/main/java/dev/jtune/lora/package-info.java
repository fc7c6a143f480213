/**
 * LoRA adapters on the decoder's {@link dev.jtune.model.llama.Linear} projections, PEFT-format export and
 * merging. (Arrives with the training issue.)
 */
package dev.jtune.lora;
