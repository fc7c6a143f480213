package dev.jtune.trainer.train;

import ai.djl.ndarray.NDArray;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.safetensors.SafetensorsFile;
import dev.jtune.trainer.optim.Tensors;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * What the trainer trains: a model to run forward, the tensors to update, and how to write them.
 *
 * <p>LoRA: {@link #model()} is the base loaded with a {@code LinearFactory} that returns LoRA projections,
 * {@link #parameters()} the adapter matrices under their PEFT names, {@link #saveWeights} the PEFT adapter.
 * Full fine-tuning: {@link FullFineTuning}.
 */
public interface TrainableModel {
    /** The forward pass. Its frozen weights may be fp32, fp16 or bf16. */
    LlamaModel model();

    /**
     * The trainable tensors by name, in a stable order: fp32 leaves of the autograd graph that {@link #model()}
     * reads (bf16 ones in bf16 full fine-tuning). The trainer turns their gradients on. The names key the optimizer state.
     */
    Map<String, NDArray> parameters();

    /**
     * Writes the trained weights into {@code dir} (which exists and is empty): a PEFT adapter
     * ({@code adapter_model.safetensors} + {@code adapter_config.json}) or a transformers model directory.
     * For exact resume through the default {@link #loadWeights}, the safetensors written must hold every
     * parameter under its {@link #parameters()} name in F32 (or, for a bf16 parameter, BF16).
     */
    void saveWeights(Path dir) throws IOException;

    /**
     * Restores {@link #parameters()} in place from a directory written by {@link #saveWeights}: by default from
     * every {@code *.safetensors} file in {@code dir} other than the trainer's {@code optimizer.safetensors},
     * matching tensors by parameter name.
     *
     * @throws IllegalArgumentException naming the directory and a parameter it lacks
     */
    default void loadWeights(Path dir) throws IOException {
        Map<String, NDArray> params = parameters();
        Map<String, Boolean> found = new HashMap<>();
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(p -> p.getFileName().toString().endsWith(".safetensors"))
                    .filter(p -> !p.getFileName().toString().equals(Checkpoints.OPTIMIZER_FILE))
                    .sorted().toList();
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
        for (Path file : files) {
            try (SafetensorsFile in = SafetensorsFile.open(file)) {
                for (var e : params.entrySet()) {
                    if (in.contains(e.getKey())) {
                        Tensors.overwrite(e.getValue(), in.floats(e.getKey()), file + ": " + e.getKey());
                        found.put(e.getKey(), true);
                    }
                }
            }
        }
        for (String name : params.keySet()) {
            if (!found.containsKey(name)) {
                throw new IllegalArgumentException(dir + ": no tensor " + name + " in " + files.stream()
                        .map(p -> p.getFileName().toString()).toList());
            }
        }
    }

    /**
     * Whether {@code name} gets weight decay. Default: every parameter but biases and norm weights, as
     * transformers' {@code get_decay_parameter_names} (LoRA matrices all decay).
     */
    default boolean decays(String name) {
        String n = name.toLowerCase(java.util.Locale.ROOT);
        return !(n.endsWith(".bias") || n.contains("norm"));
    }

    /**
     * Rows (first dimension, [start, end) pairs) of trainable tensors whose gradients the trainer zeroes after
     * backward, before clipping: Axolotl's {@code unfrozen_parameters} ranges ({@link UnfrozenParameters}). Default:
     * none.
     */
    default Map<String, List<long[]>> frozenRows() {
        return Map.of();
    }

    /** Switches dropout on (training) or off (evaluation). Default: nothing to switch. */
    default void setTraining(boolean training) {}

    /**
     * The trainer is about to run the optimizer step {@code globalStep} (0-based: transformers'
     * {@code state.global_step} in {@code TrainerCallback.on_step_begin}). Default: nothing to do; full fine-tuning
     * with {@code qat.fake_quant_after_n_steps} switches fake quantization here.
     */
    default void stepBegins(long globalStep) {}

    /**
     * The optimizer step {@code globalStep} (0-based) is done (transformers' {@code TrainerCallback.on_step_end}).
     * Default: nothing to do; {@link ConstantPruning} re-applies its masks here.
     */
    default void stepEnds(long globalStep) {}
}
