/**
 * libtorch through DJL, and the TorchScript kernel library that fills DJL's gaps.
 *
 * <ul>
 *   <li>{@link dev.jtune.model.engine.Torch} starts the PyTorch engine offline (natives from the classpath
 *       jars, never downloaded) and reports a missing or broken libtorch as one clear
 *       {@link dev.jtune.model.engine.EngineUnavailableException}.
 *   <li>{@link dev.jtune.model.engine.Kernels} is the typed kernel API: attention (causal, and causal within
 *       packed samples), RMSNorm, rotary embedding, SwiGLU, the token loss, and bf16/fp16 casts. The source
 *       is {@code kernels.torchscript.py}, packed by {@link dev.jtune.model.engine.TorchScriptArchive} and
 *       compiled by libtorch at run time; {@link dev.jtune.model.engine.ScriptModule} calls its methods on
 *       DJL tensors with autograd kept, so every kernel is differentiable.
 *   <li>{@link dev.jtune.model.engine.Autograd}: grad mode, backward with an upstream gradient, leaves' gradients,
 *       the generator's seed — so that no module outside the engine touches DJL's JNI; deferred backward steps
 *       ({@code Autograd.defer}) for a gradient transformed by its own values (fp8's output-gradient scale);
 *       {@link dev.jtune.model.engine.KernelLibrary}: a TorchScript source beside its Java face, compiled once per
 *       process (every module's kernels use it).
 *   <li>{@link dev.jtune.model.engine.Dtype} names the compute dtypes. DJL itself cannot name bf16 (it aborts
 *       the JVM), so casts always go through {@code Kernels.cast}.
 *   <li>{@link dev.jtune.model.engine.VectorApi}: whether Java loops may use the JDK's vector API (one switch for
 *       every module, {@code -Djtune.vector=false}).
 * </ul>
 */
package dev.jtune.model.engine;
