package dev.jtune.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.hf.HfCheckpoint;
import dev.jtune.model.llama.LlamaModel;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Test-only tool for tools/interop/check.sh: writes a jtune adapter with non-zero B (an adapter fresh from
 * {@link LoraModel} has B = 0, which would hide mistakes in B's layout or the scaling).
 *
 * <p>usage: {@code java -cp ... dev.jtune.lora.RandomAdapterMain BASE_DIR OUT_DIR}. The adapter is built the way
 * training builds one ({@link LoraModel#fresh}, then {@link LoraModel#save}), B is overwritten with N(0, 0.05²)
 * values from a fixed seed, and the saved modules lm_head and embed_tokens are perturbed too.
 */
public final class RandomAdapterMain {
    private RandomAdapterMain() {}

    public static void main(String[] args) {
        Path base = Path.of(args[0]);
        Path out = Path.of(args[1]);
        var settings = new LoraSettings(LoraSettings.Adapter.LORA, 4, 8, 0.05, LoraSettings.LINEAR_MODULES, true,
                List.of("embed_tokens", "lm_head"));
        Random r = new Random(12345);
        try (NDManager m = Torch.newManager(); HfCheckpoint ckpt = HfCheckpoint.open(base)) {
            LoraModel lora = LoraModel.fresh(settings, 7, LoraModel.dense());
            try (LlamaModel model = LlamaModel.load(ckpt.config(), ckpt, Dtype.FP32, m, lora)) {
                lora.attach(model);
                for (Map.Entry<String, NDArray> e : lora.trainableParameters().entrySet()) {
                    NDArray p = e.getValue();
                    float[] v = p.toFloatArray();
                    boolean isB = e.getKey().endsWith(".lora_B.weight");
                    for (int i = 0; i < v.length; i++) {
                        v[i] = isB ? (float) (r.nextGaussian() * 0.05) : e.getKey().contains("lora_A") ? v[i]
                                : v[i] + (float) (r.nextGaussian() * 0.01);
                    }
                    p.set(v);
                }
                lora.save(out, base.toString());
            }
        }
        System.out.println("random adapter written to " + out);
    }
}
