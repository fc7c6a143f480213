package dev.jtune.trainer.train;

import ai.djl.ndarray.NDArray;
import dev.jtune.lora.LoraModel;
import dev.jtune.model.llama.LlamaModel;
import java.nio.file.Path;
import java.util.Map;

/**
 * What the trainer trains with LoRA: {@code model} loaded through {@code lora} (and {@link LoraModel#attach
 * attached}), the adapter's fp32 tensors under their PEFT names, saved as a PEFT adapter naming
 * {@code baseModelName}; dropout follows the trainer's train/eval switch.
 */
public record LoraTrainable(LlamaModel model, LoraModel lora, String baseModelName, Map<String, NDArray> parameters)
        implements TrainableModel {

    public LoraTrainable(LlamaModel model, LoraModel lora, String baseModelName) {
        this(model, lora, baseModelName, lora.trainableParameters());
    }

    @Override
    public void saveWeights(Path dir) {
        lora.save(dir, baseModelName);
    }

    @Override
    public void setTraining(boolean training) {
        lora.setTraining(training);
    }
}
