/**
 * Helpers shared by the tests of several modules, added by them at test scope only (never a runtime dependency).
 *
 * <p>{@link dev.jtune.testkit.TinyLlama}: the small Llama configs the tests use ({@code preset()}: the
 * {@code tiny} preset with 64 tokens; {@code micro(tied)}: a 48-token, hidden-16 model for double-precision
 * references), their {@link dev.jtune.model.llama.RandomInit} weights as a lazy
 * {@link dev.jtune.model.llama.WeightSource} or as name → values maps to change before loading, and loading a
 * model from them. Weights scaled by a gain (peaked logits for greedy decoding tests) come from
 * {@link dev.jtune.model.llama.RandomInit#weights(double)}, which the model module's own tests use too: they
 * cannot depend on this module (model → testkit → model would be a cycle).
 */
package dev.jtune.testkit;
