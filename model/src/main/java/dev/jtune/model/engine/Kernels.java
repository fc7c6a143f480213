package dev.jtune.model.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/**
 * The typed Java face of {@code kernels.torchscript.py}: the operations DJL lacks (attention, fused
 * norms, rotary embedding, bf16 casts, the loss), each differentiable through libtorch's autograd.
 *
 * <p>One instance per process is enough ({@link #get()}); calls are thread-safe. Results are attached
 * to the manager of the first tensor argument, which is why activations come before weights: a step's
 * intermediates then live in the step's manager, not in the model's.
 */
public final class Kernels {
    /** The label value that the loss ignores, as in PyTorch and transformers. */
    public static final long IGNORE_INDEX = -100;

    private static final Kernels INSTANCE = new Kernels(new KernelLibrary(Kernels.class, "Ops", "kernels.torchscript.py"));

    private final KernelLibrary library;

    private Kernels(KernelLibrary library) {
        this.library = library;
    }

    /** The process-wide kernel library, compiled on first use. */
    public static Kernels get() {
        INSTANCE.library.ops();
        return INSTANCE;
    }

    /** Reads a UTF-8 resource next to {@code owner}. */
    public static String source(Class<?> owner, String resource) {
        try (InputStream in = owner.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("missing resource " + resource + " beside " + owner.getName());
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    // ---- dtypes ----

    /** Casts to {@code dtype}; the only safe way to make or leave bf16 in DJL. */
    public NDArray cast(NDArray x, Dtype dtype) {
        return library.ops().call("cast", x, dtype.torchCode());
    }

    /** The tensor's dtype as libtorch sees it (DJL reports bf16 as unknown), or null if not a float dtype. */
    public Dtype dtypeOf(NDArray x) {
        return Dtype.ofTorchCode((int) library.ops().callLong("dtype_code", x));
    }

    // ---- layers ----

    /** Rows of {@code weight} [V,E] for integer {@code ids} of any shape: [..., E]. */
    public NDArray embedding(NDArray ids, NDArray weight) {
        return library.ops().call("embedding", ids, weight);
    }

    /** transformers' LlamaRMSNorm: {@code weight * (x / sqrt(mean(x²) + eps))}, normalised in fp32. */
    public NDArray rmsNorm(NDArray x, NDArray weight, double eps) {
        return library.ops().call("rms_norm", x, weight, eps);
    }

    /** Gemma's RMSNorm: {@code x / sqrt(mean(x²) + eps) * (1 + weight)}, all in fp32, then cast to x's dtype. */
    public NDArray rmsNormGemma(NDArray x, NDArray weight, double eps) {
        return library.ops().call("rms_norm_gemma", x, weight, eps);
    }

    /** Rows of {@code weight} times {@code scale} rounded to the weight's dtype (Gemma's √hidden scaling). */
    public NDArray embeddingScaled(NDArray ids, NDArray weight, double scale) {
        return library.ops().call("embedding_scaled", ids, weight, scale);
    }

    /** Soft-capping {@code cap · tanh(x / cap)}, op by op in x's dtype (Gemma 2's final logits). */
    public NDArray softcap(NDArray x, double cap) {
        return library.ops().call("softcap", x, cap);
    }

    /** LongRoPE's inverse frequencies {@code 1 / (factors[i] · base^(2i/dim))}, fp32 [dim/2]. */
    public NDArray ropeInvFreqScaled(NDManager manager, int dim, double base, float[] factors) {
        try (NDArray even = manager.arange(0, dim, 2); NDArray f = manager.create(factors)) {
            return library.ops().call("rope_inv_freq_scaled", even, dim, base, f);
        }
    }

    /** Default rotary inverse frequencies {@code 1 / base^(2i/dim)}, fp32 [dim/2]. */
    public NDArray ropeInvFreq(NDManager manager, int dim, double base) {
        try (NDArray even = manager.arange(0, dim, 2)) {
            return library.ops().call("rope_inv_freq", even, dim, base);
        }
    }

    /** Llama 3 frequency-dependent scaling of rotary inverse frequencies. */
    public NDArray ropeLlama3(NDArray invFreq, double factor, double lowFreqFactor, double highFreqFactor,
            double originalMaxPositions) {
        return library.ops().call("rope_llama3", invFreq, factor, lowFreqFactor, highFreqFactor, originalMaxPositions);
    }

    /** cos and sin tables [B,T,D] for position ids [B,T], in {@code dtype}. */
    public NDList ropeCosSin(NDArray positionIds, NDArray invFreq, double attentionScaling, Dtype dtype) {
        return library.ops().callAll("rope_cos_sin", positionIds, invFreq, attentionScaling, dtype.torchCode());
    }

    /**
     * Rotary embedding of x [B,H,T,D] with transformers' rotate-half convention; cos and sin [B,T,R] with R < D
     * rotate the first R features only (partial rotary).
     */
    public NDArray rope(NDArray x, NDArray cos, NDArray sin) {
        return library.ops().call("rope", x, cos, sin);
    }

    /**
     * Causal scaled-dot-product attention; q [B,H,T,D], k and v [B,KV,T,D] (GQA when KV < H). On CUDA in
     * fp16/bf16 no mask is passed and k/v stay grouped ({@code enable_gqa}), so SDPA can choose flash attention.
     */
    public NDArray attentionCausal(NDArray q, NDArray k, NDArray v, double scale) {
        return library.ops().call("attention_causal", q, k, v, scale);
    }

    /**
     * Causal attention isolated by segment: token i attends to token j ≤ i only when both have the same
     * id in {@code segmentIds} [B,T] (int64). Packed samples and padding get distinct ids, each one contiguous
     * run within its row. On CPU (and CUDA fp32) a boolean mask; on CUDA fp16/bf16 flash attention's
     * variable-length kernel over the rows laid end to end.
     */
    public NDArray attentionSegments(NDArray q, NDArray k, NDArray v, NDArray segmentIds, double scale) {
        return library.ops().call("attention_segments", q, k, v, segmentIds, scale);
    }

    /**
     * Bidirectional attention isolated by segment: token i attends to every token j with the same id in
     * {@code segmentIds} [B,T] (int64), before or after it, as transformers does with the 4D mask
     * {@code (m_i == m_j) & (m_i > 0)} that Axolotl's diffusion trainer passes. Padding must have its own id (it
     * then sees only itself and no real token sees it). Always a boolean mask, on every device.
     */
    public NDArray attentionBidirectional(NDArray q, NDArray k, NDArray v, NDArray segmentIds, double scale) {
        return library.ops().call("attention_bidirectional", q, k, v, segmentIds, scale);
    }

    /**
     * Segment ids [B,T] to int32 boundaries [n+1] of the rows laid end to end: a cut where a row starts or the
     * id changes (the {@code cu_seqlens} of flash attention's variable-length form). Package-private: the
     * CUDA path computes it inside {@link #attentionSegments}; tests check it here.
     */
    NDArray cuSeqlensFromSegments(NDArray segmentIds) {
        return library.ops().call("cu_seqlens_from_segments", segmentIds);
    }

    /**
     * {@link #attentionSegments} through the variable-length layout, by flash attention ({@code flash}, CUDA
     * only) or one causal SDPA per sequence (anywhere). Package-private: for the CPU emulation test and the GPU
     * check; {@link #attentionSegments} picks flash itself on CUDA fp16/bf16 tensors.
     */
    NDArray attentionSegmentsVarlen(NDArray q, NDArray k, NDArray v, NDArray segmentIds, double scale,
            boolean flash) {
        return library.ops().call("attention_segments_varlen", q, k, v, segmentIds, scale, flash);
    }

    // ---- generation ----

    /**
     * Attention of the newest tokens to everything before them and causally among themselves, for decoding
     * with a key/value cache: q [B,H,Tn,D] are the tokens at positions {@code length-Tn .. length-1};
     * k and v [B,KV,Tmax,D] hold all {@code length} tokens so far in their first slots (Tmax ≥ length).
     * Query i sees keys {@code 0 .. length-Tn+i}. Not SDPA's {@code is_causal}, whose mask is aligned
     * top-left when Tn ≠ length.
     */
    public NDArray attentionWithPast(NDArray q, NDArray k, NDArray v, long length, double scale) {
        return library.ops().call("attention_with_past", q, k, v, length, scale);
    }

    /**
     * Sliding-window causal attention (Mistral's {@code sliding_window}): as {@link #attentionWithPast} — with
     * {@code length} = T and k, v of T tokens, as {@link #attentionCausal} — except that the query at position p sees
     * only keys {@code p-window+1 .. p}, transformers' {@code sliding_window_overlay}. Always an explicit mask.
     */
    public NDArray attentionWindow(NDArray q, NDArray k, NDArray v, long length, long window, double scale) {
        return library.ops().call("attention_window", q, k, v, length, window, scale);
    }

    /** {@link #attentionSegments} within a sliding window of {@code window} keys (see {@link #attentionWindow}). */
    public NDArray attentionWindowSegments(NDArray q, NDArray k, NDArray v, NDArray segmentIds, long window,
            double scale) {
        return library.ops().call("attention_window_segments", q, k, v, segmentIds, window, scale);
    }

    /**
     * Eager attention as transformers' Gemma 2 computes it: {@code q kᵀ · scale} in the compute dtype, soft-capped
     * by {@code softcap} when it is positive, hidden keys masked, softmax in fp32. q [B,H,Tn,D] are the tokens at
     * positions {@code length-Tn .. length-1}; k, v [B,KV,≥length,D]; {@code window} (0: none) and, when
     * {@code segmentIds} is not null, packed samples' isolation (then Tn = length) limit what each query sees.
     */
    public NDArray attentionCapped(NDArray q, NDArray k, NDArray v, NDArray segmentIds, long length, long window,
            double scale, double softcap) {
        NDArray segments = segmentIds != null ? segmentIds : q;
        return library.ops().call("attention_capped", q, k, v, segments, segmentIds != null, length, window, scale,
                softcap);
    }

    /**
     * Writes {@code fresh} [B,KV,Tn,D] into {@code cache} [B,KV,Tmax,D] at slots {@code start ..
     * start+Tn-1}, in place and detached from autograd; returns {@code start + Tn}.
     */
    public long kvCacheWrite(NDArray cache, NDArray fresh, long start) {
        return library.ops().callLong("kv_cache_write", cache, fresh, start);
    }

    /** Zeros [batch, kvHeads, capacity, headDim] in {@code dtype}, in {@code anchor}'s manager and device. */
    public NDArray kvCacheAlloc(NDArray anchor, long batch, long kvHeads, long capacity, long headDim, Dtype dtype) {
        return library.ops().call("kv_cache_alloc", anchor, batch, kvHeads, capacity, headDim, dtype.torchCode());
    }

    /** Per-token segment ids [total] from sample boundaries {@code cu_seqlens} [n+1]. */
    public NDArray segmentsFromCuSeqlens(NDArray cuSeqlens, long total) {
        return library.ops().call("segments_from_cu_seqlens", cuSeqlens, total);
    }

    /** x [..., sum(sizes)] cut along its last dimension into parts of {@code sizes} (a fused projection's outputs). */
    public NDList splitLast(NDArray x, long... sizes) {
        return library.ops().callAll("split_last", x, sizes);
    }

    /** SwiGLU's gated product {@code silu(gate) * up}. */
    public NDArray swiglu(NDArray gate, NDArray up) {
        return library.ops().call("swiglu", gate, up);
    }

    /** Gemma's GeGLU product {@code gelu_tanh(gate) * up}. */
    public NDArray gegluTanh(NDArray gate, NDArray up) {
        return library.ops().call("geglu_tanh", gate, up);
    }

    // ---- loss ----

    /** Per-token negative log-likelihood, fp32 [N]; 0 where the label is {@link #IGNORE_INDEX}. */
    public NDArray tokenNll(NDArray logits, NDArray labels) {
        return library.ops().call("token_nll", logits, labels);
    }

    /** [sum of NLL over trained tokens (fp32 scalar), count of trained tokens (int64 scalar)]. */
    public NDList crossEntropySum(NDArray logits, NDArray labels) {
        return library.ops().callAll("cross_entropy_sum", logits, labels);
    }

    /**
     * Axolotl's EAFT loss ({@code use_eaft}): [sum over trained tokens of NLL × H^alpha (fp32 scalar), count of
     * trained tokens (int64 scalar)], H the entropy of the softmax over the top-{@code k} fp32 logits, taken without
     * gradient.
     */
    public NDList eaftNllSum(NDArray logits, NDArray labels, double alpha, int k) {
        return library.ops().callAll("eaft_nll_sum", logits, labels, alpha, (long) k);
    }
}
