/**
 * Text generation with a key/value cache.
 *
 * <p>{@link dev.jtune.model.generate.Generator#generate Generator.generate(prompt, settings, onToken)} runs the
 * prompt once through {@link dev.jtune.model.generate.CachedDecoder} (prefill: the model's own decoder stack with
 * a cache in its context), then one token per step,
 * each step attending to the {@link dev.jtune.model.llama.KvCache} of all earlier keys and values through
 * the {@code attention_with_past} kernel (explicit causal offset: new tokens at positions p..p+n-1 see the
 * cache 0..p-1 and each other causally). {@link dev.jtune.model.generate.GenerationSettings} holds
 * max_new_tokens, temperature (0 = greedy), top-k, top-p, the seed and the stop (EOS) ids;
 * {@link dev.jtune.model.generate.Sampler} applies transformers' warpers in its order (temperature → top-k →
 * top-p) and draws with a seeded {@link java.util.Random}. {@link dev.jtune.model.generate.Generation} holds
 * the new ids and decodes them; {@link dev.jtune.model.generate.TextStream} turns tokens into text as they
 * arrive. The cached decoder is the model's own forward, so LoRA and NF4 projections and trainable embeddings
 * apply unchanged. Batch size 1 in {@code Generator}; the decoder and cache take B rows.
 */
package dev.jtune.model.generate;
