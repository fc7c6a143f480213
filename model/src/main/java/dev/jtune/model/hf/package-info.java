/**
 * Hugging Face model directories: finding one (local folder or the hub cache, never downloading) and
 * reading its config.json and safetensors weights as a {@link dev.jtune.model.llama.WeightSource}.
 */
package dev.jtune.model.hf;
