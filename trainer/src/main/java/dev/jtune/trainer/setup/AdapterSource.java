package dev.jtune.trainer.setup;

import dev.jtune.lora.LoraSettings;
import java.nio.file.Path;

/** Which LoRA adapter a model is assembled with. */
public sealed interface AdapterSource {
    /** The base model alone (scoring, inference, full fine-tuning). */
    record None() implements AdapterSource {}

    /** A new adapter to train: A Kaiming-uniform from {@code seed}, B zero (PEFT's initialisation). */
    record Fresh(LoraSettings settings, long seed) implements AdapterSource {}

    /** A PEFT adapter folder ({@code adapter_config.json} + {@code adapter_model.safetensors}), from jtune or PEFT. */
    record Saved(Path dir) implements AdapterSource {}

    AdapterSource NONE = new None();
}
