package dev.jtune.trainer.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsFile;
import dev.jtune.model.safetensors.SafetensorsWriter;
import dev.jtune.trainer.dist.ProcessGroup;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * Axolotl's {@code optimizer: muon}: axolotl-contribs-mit's MuonOptimizerFactory over its port of Microsoft dion's
 * Muon (read at that repository's 8d21692; Axolotl 067b021 pins its 0.0.6, whose DistMuon does the same arithmetic).
 * Tensors whose name holds {@code embed_tokens} or {@code lm_head}, and every tensor of fewer than two dimensions, are
 * updated by an {@link AdamW} (betas (0.9, 0.95) unless both are given, weight decay only where transformers' decay
 * names say and never on the embeddings); every other matrix by Muon:
 * <pre>
 *   M = mu M + G;  U = bf16(mu M + G)                         (Nesterov, mu 0.95)
 *   U = NewtonSchulz5(U) in bf16: transposed when rows > cols, U / (|U|_F + eps), five steps
 *       A = U Uᵀ, B = b A + c A A, U = a U + B U with dion's (a, b, c) per step
 *   W = W (1 - lr wd) - lr sqrt(fan_out / fan_in) U               (adjust_lr: spectral_norm)
 * </pre>
 * One process only: dion's Muon spreads whole matrices over ranks for the orthogonalization, which jtune's sharding
 * does not do ({@link Optimizer#create} refuses several ranks).
 */
public final class Muon implements Optimizer {
    /** dion's Newton-Schulz coefficients, one (a, b, c) per iteration. */
    static final double[][] NEWTON_SCHULZ = {
        {4.0848, -6.8946, 2.9270},
        {3.9505, -6.3029, 2.6377},
        {3.7418, -5.5913, 2.3037},
        {2.8769, -3.1427, 1.2046},
        {2.8366, -3.0525, 1.2012},
    };
    /** The factory's momentum ({@code mu}). */
    static final double MOMENTUM = 0.95;

    private final Map<String, NDArray> all;
    private final Map<String, NDArray> matrices = new LinkedHashMap<>();
    private final Map<String, Boolean> decays = new LinkedHashMap<>();
    private final Map<String, NDArray> momentum = new LinkedHashMap<>();
    private final AdamW adam;
    private final AdamW.Hyper hyper;
    private final NDManager manager;

    /** Whether Muon (not AdamW) updates the tensor {@code name} of {@code shape}, as the factory splits them. */
    public static boolean orthogonalized(String name, Shape shape) {
        boolean embedding = name.endsWith("modules_to_save.default.weight") || name.contains("embed_tokens")
                || name.contains("lm_head");
        return !embedding && shape.dimension() >= 2;
    }

    /**
     * @param params the trainable fp32 tensors by name
     * @param hyper betas and eps of the AdamW part (as Axolotl resolves them for Muon), weight decay of both
     * @param decays which tensors transformers' {@code get_decay_parameter_names} decays
     */
    public Muon(Map<String, NDArray> params, AdamW.Hyper hyper, Predicate<String> decays, NDManager parent) {
        this.all = new LinkedHashMap<>(params);
        this.hyper = hyper;
        this.manager = parent.newSubManager();
        Map<String, NDArray> rest = new LinkedHashMap<>();
        for (var e : params.entrySet()) {
            if (orthogonalized(e.getKey(), e.getValue().getShape())) {
                matrices.put(e.getKey(), e.getValue());
                this.decays.put(e.getKey(), decays.test(e.getKey()));
                momentum.put(e.getKey(), Tensors.zerosLike(e.getValue(), manager));
            } else {
                rest.put(e.getKey(), e.getValue());
            }
        }
        // the factory's groups: embeddings and lm_head without decay, other tensors as transformers' decay names say
        this.adam = new AdamW(rest, hyper.with(AdamW.Variant.TORCH),
                name -> !(name.endsWith("modules_to_save.default.weight") || name.contains("embed_tokens")
                        || name.contains("lm_head")) && decays.test(name),
                ProcessGroup.single(), manager);
    }

    /** The tensors Muon updates, by name (the rest go to AdamW). */
    public List<String> orthogonalizedNames() {
        return List.copyOf(matrices.keySet());
    }

    @Override
    public void reduceGradients() {}

    @Override
    public void scaleGradients(double factor) {
        Gradients.scale(all.values(), factor);
    }

    @Override
    public boolean gradientsFinite() {
        return Gradients.allFinite(all.values());
    }

    @Override
    public double clipGradients(double maxNorm) {
        return GradClipping.clip(all.values(), maxNorm, manager);
    }

    @Override
    public void zeroGradients() {
        Gradients.zero(all.values());
    }

    @Override
    public void checkReplicas(long step) {}

    @Override
    public void step(double lr) {
        adam.step(lr);
        List<String> names = new ArrayList<>(matrices.keySet());
        List<NDArray> grads = Gradients.open(matrices.values());
        try (NDManager scratch = manager.newSubManager()) {
            for (int i = 0; i < names.size(); i++) {
                NDArray g = grads.get(i);
                if (g == null) continue;
                String name = names.get(i);
                double wd = decays.get(name) ? hyper.weightDecay() : 0.0;
                update(matrices.get(name), g, momentum.get(name), lr, wd, hyper.eps(), scratch);
            }
        } finally {
            Gradients.close(grads);
        }
    }

    /** One Muon update of {@code param} (in place) and its momentum buffer {@code m}. */
    static void update(NDArray param, NDArray g, NDArray m, double lr, double wd, double eps, NDManager scratch) {
        // copies in the scratch manager, so that every temporary below is freed with it
        NDArray grad = inScratch(g, scratch);
        NDArray newM = inScratch(m, scratch).mul(MOMENTUM).add(grad);
        Tensors.copyInto(m, newM);
        NDArray nesterov = newM.mul(MOMENTUM).add(grad);
        NDArray u = newtonSchulz(Kernels.get().cast(nesterov, Dtype.BF16), eps, scratch);
        long[] shape = param.getShape().getShape();
        double adjusted = lr * Math.sqrt((double) shape[0] / shape[1]);
        NDArray step = u.mul(adjusted); // bf16, as dion's foreach multiply of the bf16 update
        NDArray updated = inScratch(param, scratch).mul(1 - lr * wd).sub(step);
        Tensors.copyInto(param, updated);
    }

    private static NDArray inScratch(NDArray x, NDManager scratch) {
        NDArray copy = x.duplicate();
        copy.attach(scratch);
        return copy;
    }

    /** dion's {@code zeropower_via_newtonschulz5} on a bf16 matrix: every product and sum rounded to bf16. */
    static NDArray newtonSchulz(NDArray g, double eps, NDManager scratch) {
        g.attach(scratch);
        boolean tall = g.getShape().get(0) > g.getShape().get(1);
        NDArray x = tall ? g.transpose() : g;
        // torch's norm of a bf16 tensor: accumulated in fp32, returned rounded to bf16
        NDArray x32 = Kernels.get().cast(x, Dtype.FP32);
        x32.attach(scratch);
        double norm = roundBf16((float) Math.sqrt(x32.square().sum().getFloat()));
        x = x.div(roundBf16((float) (norm + eps)));
        for (double[] abc : NEWTON_SCHULZ) {
            NDArray a = x.matMul(x.transpose());
            NDArray b = a.mul(abc[1]).add(a.matMul(a).mul(abc[2]));
            x = x.mul(abc[0]).add(b.matMul(x));
        }
        return tall ? x.transpose() : x;
    }

    /** {@code v} rounded to the nearest bfloat16 (ties to even), as a cast to torch.bfloat16 does. */
    static double roundBf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        int rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000;
        return Float.intBitsToFloat(rounded);
    }

    @Override
    public StateWriter gatherState() {
        return file -> {
            adam.gatherState().write(file);
            List<SafetensorsWriter.Entry> entries = new ArrayList<>();
            for (var e : momentum.entrySet()) {
                entries.add(SafetensorsWriter.Entry.ofFloats(e.getKey() + ".momentum",
                        e.getValue().getShape().getShape(), Tensors.floats(e.getValue()), SafetensorsDtype.F32));
            }
            SafetensorsWriter.write(momentumFile(file), entries, Map.of("optimizer", "muon"));
        };
    }

    /** Muon's momentum buffers, beside AdamW's state file. */
    static Path momentumFile(Path file) {
        return file.resolveSibling(file.getFileName() + ".muon");
    }

    @Override
    public void load(Path file) {
        adam.load(file);
        Path m = momentumFile(file);
        try (SafetensorsFile in = SafetensorsFile.open(m)) {
            for (var e : momentum.entrySet()) {
                String key = e.getKey() + ".momentum";
                if (!in.contains(key)) {
                    throw new IllegalArgumentException(m + ": no " + key + " (not a Muon state of this model)");
                }
                Tensors.overwrite(e.getValue(), in.floats(key), m + ": " + key);
            }
        }
    }

    @Override
    public void close() {
        manager.close();
    }
}
