package dev.jtune.trainer.train;

import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.llama.DecoderLayer;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.Linear;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Full fine-tuning: every weight of an fp32 {@link LlamaModel} with dense projections is trainable, under its
 * transformers name; {@link #saveWeights} writes a transformers model directory ({@code config.json},
 * {@code model.safetensors} in F32). A tied head is the embedding and appears once.
 */
public final class FullFineTuning implements TrainableModel {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final LlamaModel model;
    private final Map<String, NDArray> parameters;

    /** @throws IllegalArgumentException if the model is not fp32 or a projection is not dense */
    public FullFineTuning(LlamaModel model) {
        if (model.dtype() != Dtype.FP32) {
            throw new IllegalArgumentException("full fine-tuning trains fp32 weights; the model computes in "
                    + model.dtype().label() + " (use an adapter for bf16/fp16 bases)");
        }
        this.model = model;
        this.parameters = Collections.unmodifiableMap(namedWeights(model));
    }

    /** Every weight of {@code model} by its transformers name, in checkpoint order. */
    public static Map<String, NDArray> namedWeights(LlamaModel model) {
        Map<String, NDArray> w = new LinkedHashMap<>();
        w.put("model.embed_tokens.weight", model.embedTokens());
        List<DecoderLayer> layers = model.layers();
        for (int i = 0; i < layers.size(); i++) {
            String p = "model.layers." + i + ".";
            DecoderLayer l = layers.get(i);
            w.put(p + "input_layernorm.weight", l.inputNorm());
            w.put(p + "self_attn.q_proj.weight", dense(l.attention().q(), p + "self_attn.q_proj"));
            w.put(p + "self_attn.k_proj.weight", dense(l.attention().k(), p + "self_attn.k_proj"));
            w.put(p + "self_attn.v_proj.weight", dense(l.attention().v(), p + "self_attn.v_proj"));
            w.put(p + "self_attn.o_proj.weight", dense(l.attention().o(), p + "self_attn.o_proj"));
            w.put(p + "post_attention_layernorm.weight", l.postAttentionNorm());
            w.put(p + "mlp.gate_proj.weight", dense(l.mlp().gate(), p + "mlp.gate_proj"));
            w.put(p + "mlp.up_proj.weight", dense(l.mlp().up(), p + "mlp.up_proj"));
            w.put(p + "mlp.down_proj.weight", dense(l.mlp().down(), p + "mlp.down_proj"));
        }
        w.put("model.norm.weight", model.norm());
        if (!model.config().tieWordEmbeddings()) {
            w.put("lm_head.weight", dense(model.lmHead(), "lm_head"));
        }
        return w;
    }

    private static NDArray dense(Linear linear, String name) {
        if (linear instanceof DenseLinear d) {
            return d.weight();
        }
        throw new IllegalArgumentException(name + " is a " + linear.getClass().getSimpleName()
                + ", not a dense projection; full fine-tuning needs dense fp32 weights");
    }

    @Override
    public LlamaModel model() {
        return model;
    }

    @Override
    public Map<String, NDArray> parameters() {
        return parameters;
    }

    @Override
    public void saveWeights(Path dir) throws IOException {
        Files.writeString(dir.resolve("config.json"), JSON.writeValueAsString(model.config().toJson()) + "\n");
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        for (var e : parameters.entrySet()) {
            NDArray t = e.getValue();
            // Written one tensor at a time, when the writer reaches it.
            long[] shape = t.getShape().getShape();
            entries.add(new SafetensorsWriter.Entry(e.getKey(), SafetensorsDtype.F32, shape, channel ->
                    SafetensorsWriter.Entry.ofFloats(e.getKey(), shape, t.toFloatArray(), SafetensorsDtype.F32)
                            .source().writeTo(channel)));
        }
        SafetensorsWriter.write(dir.resolve("model.safetensors"), entries, Map.of());
    }
}
