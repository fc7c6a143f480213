/**
 * LoRA adapters on the decoder's {@link dev.jtune.model.llama.Linear} projections, PEFT-format export and
 * merging — what PEFT 0.21 computes and writes.
 *
 * <ul>
 *   <li>{@link dev.jtune.lora.LoraSettings}: the config's adapter keys ({@code adapter}, {@code lora_r},
 *       {@code lora_alpha}, {@code lora_dropout}, {@code lora_target_modules}/{@code lora_target_linear},
 *       {@code peft_use_rslora}, {@code lora_modules_to_save}), checked, with the scaling alpha/r or alpha/√r;
 *       {@code lora_target_modules} given as a string is a Python regular expression PEFT fully matches against
 *       module names (translated to Java's syntax, or refused where the two differ).</li>
 *   <li>{@link dev.jtune.lora.LoraLinear}: a frozen base projection (dense or NF4) plus fp32 A [r,in] and
 *       B [out,r]; PEFT's initialisation (A Kaiming-uniform a=√5 from a seeded Java RNG, B zero), forward and
 *       dropout (training mode only, libtorch's global generator).</li>
 *   <li>{@link dev.jtune.lora.LoraModel}: the {@code LinearFactory} that wraps target modules while a
 *       {@code LlamaModel} loads, delegating the base to another factory (so QLoRA = LoRA over NF4), plus
 *       trainable fp32 copies for modules_to_save; {@code trainableParameters()} by PEFT state-dict name.</li>
 *   <li>{@link dev.jtune.lora.PeftAdapter}: {@code adapter_config.json} and {@code adapter_model.safetensors}
 *       exactly as PEFT writes them, and reading them back (jtune's or PEFT's), with named errors.</li>
 *   <li>{@link dev.jtune.lora.LoraMerge}: W + scaling·B·A into a new Hugging Face model directory, streaming,
 *       in the base's dtype.</li>
 *   <li>{@link dev.jtune.lora.Loftq}: PEFT's LoftQ initialisation (NF4 round trip of the base, SVD factors of the
 *       residual as A and B).</li>
 * </ul>
 *
 * Verified against real PEFT by {@code tools/interop/check.sh} ({@code peft_check.py}).
 */
package dev.jtune.lora;
