package dev.jtune.model.llama;

import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * The decoder families jtune implements natively, each as transformers' modeling file of that name computes it.
 * They share one decoder stack ({@link LlamaModel}); what differs is switched by {@link Architecture} and by these
 * structural traits.
 */
public enum Family {
    /** Llama 1/2/3 ({@code LlamaForCausalLM}). */
    LLAMA("llama", "LlamaForCausalLM"),
    /** Mistral and Mistral-Nemo: Llama with an optional sliding window and explicit head_dim. */
    MISTRAL("mistral", "MistralForCausalLM"),
    /** Qwen2/2.5, QwQ, DeepSeek-R1-Distill-Qwen: biases on q/k/v, optional sliding window on upper layers. */
    QWEN2("qwen2", "Qwen2ForCausalLM"),
    /** Qwen3: RMSNorm on each query and key head before rotary. */
    QWEN3("qwen3", "Qwen3ForCausalLM"),
    /** Gemma 2: (1 + w) norms, √hidden embeddings, GeGLU, sandwich norms, soft-capping, alternating windows. */
    GEMMA2("gemma2", "Gemma2ForCausalLM"),
    /** Gemma 3 text: Gemma 2 without soft-capping, with q/k norms and local/global rotary bases. */
    GEMMA3("gemma3_text", "Gemma3ForCausalLM"),
    /** Phi-3/3.5/4-mini: fused qkv_proj and gate_up_proj, partial rotary, LongRoPE. */
    PHI3("phi3", "Phi3ForCausalLM");

    private final String modelType;
    private final String architecture;

    Family(String modelType, String architecture) {
        this.modelType = modelType;
        this.architecture = architecture;
    }

    /** config.json's {@code model_type}. */
    public String modelType() {
        return modelType;
    }

    /** transformers' class, config.json's {@code architectures[0]}. */
    public String architecture() {
        return architecture;
    }

    /** Gemma's conventions: (1 + w) RMSNorm in fp32, √hidden embedding scale, four norms per layer, GeGLU-tanh. */
    public boolean gemma() {
        return this == GEMMA2 || this == GEMMA3;
    }

    /** Per-head RMSNorm of queries and keys before rotary ({@code q_norm}, {@code k_norm}). */
    public boolean qkNorm() {
        return this == QWEN3 || this == GEMMA3;
    }

    /** One {@code qkv_proj} and one {@code gate_up_proj} instead of q/k/v and gate/up. */
    public boolean fusedProjections() {
        return this == PHI3;
    }

    /** The activation config.json must name (key {@code hidden_activation} or {@code hidden_act}). */
    public String activation() {
        return gemma() ? "gelu_pytorch_tanh" : "silu";
    }

    /** The family whose {@code model_type} this is. */
    public static Optional<Family> ofModelType(String modelType) {
        return Arrays.stream(values()).filter(f -> f.modelType.equals(modelType)).findFirst();
    }

    /** Every supported {@code model_type}, for errors. */
    public static List<String> modelTypes() {
        return Arrays.stream(values()).map(Family::modelType).toList();
    }

    /** Every supported architecture class, for errors. */
    public static List<String> architectures() {
        return Arrays.stream(values()).map(Family::architecture).toList();
    }
}
