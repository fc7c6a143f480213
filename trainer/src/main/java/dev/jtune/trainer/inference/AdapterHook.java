package dev.jtune.trainer.inference;

import dev.jtune.model.engine.Dtype;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaModel;
import java.nio.file.Path;

/**
 * Where {@code inference --lora-model-dir DIR} (or the config's {@code lora_model_dir}) gets the projections
 * that apply a trained adapter over the base weights.
 *
 * <p>COORDINATOR: connect this to the lora module in {@link #current()}: return a hook that loads the PEFT
 * adapter ({@code PeftAdapter.load(dir)}) and gives its {@code LinearFactory}, which wraps each base
 * projection named in the adapter in a {@code LoraLinear}. Until then an adapter directory fails with
 * {@link #NOT_WIRED}'s message; runs without one never touch this.
 */
@FunctionalInterface
public interface AdapterHook {
    /**
     * The factory that builds every projection of the base model, applying the adapter in {@code adapterDir}.
     *
     * @param adapterDir a PEFT adapter directory (adapter_config.json, adapter_model.safetensors); it exists
     * @param base the base model's architecture
     * @param dtype the compute dtype
     */
    LlamaModel.LinearFactory linearFactory(Path adapterDir, LlamaConfig base, Dtype dtype);

    /** The hook before the lora module is connected: a clear refusal. */
    AdapterHook NOT_WIRED = (dir, base, dtype) -> {
        throw new UnsupportedOperationException("LoRA adapters not wired yet: cannot apply the adapter in " + dir
                + " (run without --lora-model-dir / lora_model_dir, or on a merged model with --model)");
    };

    /** The hook inference uses. */
    static AdapterHook current() {
        return NOT_WIRED;
    }
}
