package dev.jtune.trainer.train;

import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.Linear;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.llama.TensorSpec;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsWriter;
import dev.jtune.trainer.optim.Tensors;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Full fine-tuning: every weight of a {@link LlamaModel} with dense projections is trainable, under its
 * transformers name; {@link #saveWeights} writes a transformers model directory ({@code config.json},
 * {@code model.safetensors}). A tied head is the embedding and appears once.
 *
 * <p>The model is fp32, or bf16: a bf16 model trains its bf16 weights in place, with bf16 gradients and bf16
 * AdamW moments, as transformers' Trainer does with a model that Axolotl loaded in {@code torch_dtype=bfloat16}
 * ({@code bf16: true} without an adapter); the saved weights are then BF16, as {@code save_pretrained} writes
 * them. Or mixed precision: fp32 weights (the master copy: AdamW and its moments stay fp32) in a model that
 * computes in bf16 or fp16 ({@link LlamaModel#loadFp32Weights}: each weight cast where it is used, the gradient
 * flowing back through the cast into fp32), as accelerate runs a bf16- or fp16-loaded model under FSDP mixed
 * precision after upcasting its parameters to fp32; the saved weights are then F32 ({@code torch_dtype: float32}),
 * the dtype of the upcast parameters that transformers' {@code save_pretrained} writes. Or fp16, trained in place
 * as bf16 is, under {@code float16: true} (Axolotl loads the model in fp16 and the Trainer runs no AMP and no loss
 * scaling); the saved weights are then F16 ({@code torch_dtype: float16}).
 *
 * <p>Followed for the mixed-precision recipe: accelerate 1.15 {@code accelerator.py} ({@code prepare_model}: the FSDP1
 * upcast, "Upcasted low precision parameters ... because mixed precision turned on in FSDP"), {@code
 * utils/fsdp_utils.py} ({@code fsdp2_prepare_model}: the FSDP2 upcast) and {@code utils/dataclasses.py}
 * ({@code FullyShardedDataParallelPlugin.set_mixed_precision}: param, reduce and buffer dtype all bf16 or fp16);
 * torch 2.13 {@code distributed/fsdp/_flat_param.py} / {@code _runtime_utils.py} (the low-precision copy of the flat
 * parameter for forward and backward, {@code _cast_grad_to_param_dtype} back to fp32) and {@code amp/grad_scaler.py}
 * / {@code distributed/fsdp/sharded_grad_scaler.py} (fp16 loss scaling). jtune reduces and accumulates the gradients in
 * fp32 where accelerate reduces in the compute dtype (README: Precision).
 */
public final class FullFineTuning implements TrainableModel {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final LlamaModel model;
    private final Map<String, NDArray> parameters;
    private final Dtype weights;
    private final java.util.function.LongConsumer stepBegins;

    /** @throws IllegalArgumentException if a projection is not dense */
    public FullFineTuning(LlamaModel model) {
        this(model, step -> {});
    }

    /**
     * @param stepBegins called before each optimizer step with its 0-based number ({@link #stepBegins})
     * @throws IllegalArgumentException if a projection is not dense
     */
    public FullFineTuning(LlamaModel model, java.util.function.LongConsumer stepBegins) {
        this.stepBegins = stepBegins;
        // fp16 weights train in place under float16: true only (the Trainer refuses them otherwise: torch's
        // GradScaler will not unscale fp16 gradients).
        this.weights = Kernels.get().dtypeOf(model.norm());
        this.model = model;
        this.parameters = Collections.unmodifiableMap(namedWeights(model));
    }

    /** Whether the weights are an fp32 master copy of a model computing in bf16 or fp16 (mixed precision). */
    public boolean masterWeights() {
        return weights == Dtype.FP32 && model.dtype() != Dtype.FP32;
    }

    /** Every weight of {@code model} by its transformers name, in checkpoint order. */
    public static Map<String, NDArray> namedWeights(LlamaModel model) {
        Map<String, Linear> linears = model.linears();
        Map<String, NDArray> others = model.tensors();
        Map<String, NDArray> w = new LinkedHashMap<>();
        for (TensorSpec t : model.config().tensors()) {
            String name = t.name();
            if (t.role() == TensorSpec.Role.LINEAR) {
                String module = name.substring(0, name.length() - ".weight".length());
                w.put(name, dense(linears.get(module), module));
            } else {
                w.put(name, others.get(name));
            }
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
    public void stepBegins(long globalStep) {
        stepBegins.accept(globalStep);
    }

    @Override
    public Map<String, NDArray> parameters() {
        return parameters;
    }

    @Override
    public void saveWeights(Path dir) throws IOException {
        var json = model.config().asCausalLm().toJson();
        // save_pretrained records the dtype the weights are saved in, not the base checkpoint's.
        json.put("torch_dtype", weights == Dtype.BF16 ? "bfloat16" : weights == Dtype.FP16 ? "float16" : "float32");
        Files.writeString(dir.resolve("config.json"), JSON.writeValueAsString(json) + "\n");
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        String prefix = model.config().architecture().textPrefix();
        // The weights' own dtype (bf16 values round-trip through fp32 exactly).
        SafetensorsDtype stored = weights == Dtype.BF16 ? SafetensorsDtype.BF16
                : weights == Dtype.FP16 ? SafetensorsDtype.F16 : SafetensorsDtype.F32;
        for (var e : parameters.entrySet()) {
            NDArray t = e.getValue();
            // config.json describes the causal LM (a multimodal checkpoint's text part alone): its tensor names.
            String name = e.getKey().startsWith(prefix) ? "model." + e.getKey().substring(prefix.length()) : e.getKey();
            // Written one tensor at a time, when the writer reaches it.
            long[] shape = t.getShape().getShape();
            entries.add(new SafetensorsWriter.Entry(name, stored, shape, channel ->
                    SafetensorsWriter.Entry.ofFloats(name, shape, Tensors.floats(t), stored)
                            .source().writeTo(channel)));
        }
        SafetensorsWriter.write(dir.resolve("model.safetensors"), entries, Map.of());
    }
}
