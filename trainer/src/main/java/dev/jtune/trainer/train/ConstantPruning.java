package dev.jtune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Autograd;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.trainer.optim.Tensors;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * llm-compressor's {@code ConstantPruningModifier} around a trainable model: the selected weights keep their zeros.
 * When training begins (the first {@link #stepBegins}, after a resume has restored the weights: transformers'
 * {@code on_train_begin}, where Axolotl's plugin initializes the session) each gets the mask {@code |w| > 1e-8}
 * ({@code on_start}, compared in the weight's dtype); after each optimizer step ({@link #stepEnds}:
 * {@code OPTIM_POST_STEP} from Axolotl's {@code on_step_end}) the weight is multiplied by it. Gradients and the
 * optimizer state are left alone, as there.
 */
public final class ConstantPruning implements TrainableModel {
    private final TrainableModel inner;
    private final List<String> names;
    private final NDManager manager;
    private final Map<String, NDArray> masks = new LinkedHashMap<>();
    private final Counted counted;

    /** Told what the masks hold once they are computed: tensors, masked entries, all entries. */
    public interface Counted {
        void masks(int tensors, long zeros, long values);
    }

    /**
     * @param names the trainable parameters the targets select
     * @param manager owns the masks
     * @throws IllegalArgumentException naming a parameter {@code inner} lacks
     */
    public ConstantPruning(TrainableModel inner, List<String> names, NDManager manager) {
        this(inner, names, manager, (t, z, v) -> {});
    }

    /** As above, with {@code counted} told when the masks are computed. */
    public ConstantPruning(TrainableModel inner, List<String> names, NDManager manager, Counted counted) {
        for (String n : names) {
            if (!inner.parameters().containsKey(n)) {
                throw new IllegalArgumentException("llmcompressor: no trainable parameter " + n);
            }
        }
        this.inner = inner;
        this.names = List.copyOf(names);
        this.manager = manager;
        this.counted = counted;
    }

    /** The masks (bool, true where kept) by parameter name; empty before training begins. */
    public Map<String, NDArray> masks() {
        return java.util.Collections.unmodifiableMap(masks);
    }

    /**
     * Computes the masks from the current weights ({@code on_start}); called by the first {@link #stepBegins}.
     *
     * @return the number of entries masked (zero)
     */
    public long computeMasks() {
        long zeros = 0;
        long values = 0;
        for (String n : names) {
            NDArray w = inner.parameters().get(n);
            Dtype dtype = Kernels.get().dtypeOf(w);
            // torch compares a bf16 tensor with the Python float in bf16: the threshold rounded to bf16 first.
            float threshold = dtype == Dtype.BF16 ? bf16((float) dev.jtune.trainer.setup.SparseFinetuning.EPSILON)
                    : (float) dev.jtune.trainer.setup.SparseFinetuning.EPSILON;
            NDArray mask;
            try (NDManager scratch = w.getManager().newSubManager()) {
                mask = Autograd.noGrad(() -> {
                    NDArray wide = dtype == Dtype.FP32 || dtype == null ? w : Kernels.get().cast(w, Dtype.FP32);
                    if (wide != w) wide.attach(scratch);
                    NDArray abs = wide.abs();
                    abs.attach(scratch);
                    // A libtorch-owned scalar, not DJL's gt(Number) (DjlScalarOpsTest).
                    return abs.gt(scratch.full(new ai.djl.ndarray.types.Shape(), threshold));
                });
                mask.attach(manager);
            }
            NDArray old = masks.put(n, mask);
            if (old != null) old.close();
            zeros += w.size() - mask.countNonzero().getLong();
            values += w.size();
        }
        counted.masks(names.size(), zeros, values);
        return zeros;
    }

    /** Multiplies each selected weight by its mask, in place ({@code module.weight *= mask}). */
    public void applyMasks() {
        for (var e : masks.entrySet()) {
            NDArray w = inner.parameters().get(e.getKey());
            try (NDManager scratch = w.getManager().newSubManager()) {
                NDArray masked = Autograd.noGrad(() -> {
                    NDArray m = e.getValue().toType(ai.djl.ndarray.types.DataType.FLOAT32, false);
                    NDArray wide = Kernels.get().dtypeOf(w) == Dtype.FP32 ? w : Kernels.get().cast(w, Dtype.FP32);
                    NDArray out = wide.mul(m);
                    out.attach(scratch);
                    m.attach(scratch);
                    if (wide != w) wide.attach(scratch);
                    return out;
                });
                // Exact: w * 1 is w, w * 0 is (signed) zero, then the copy casts back to w's dtype.
                Tensors.copyInto(w, masked);
            }
        }
    }

    /** {@code x} rounded to bf16 (nearest, ties to even), as a float. */
    static float bf16(float x) {
        int bits = Float.floatToRawIntBits(x);
        int rounded = bits + 0x7FFF + ((bits >>> 16) & 1);
        return Float.intBitsToFloat(rounded & 0xFFFF0000);
    }

    @Override
    public void stepBegins(long globalStep) {
        if (masks.isEmpty()) {
            computeMasks();
        }
        inner.stepBegins(globalStep);
    }

    @Override
    public void stepEnds(long globalStep) {
        inner.stepEnds(globalStep);
        applyMasks();
    }

    @Override
    public LlamaModel model() {
        return inner.model();
    }

    @Override
    public Map<String, NDArray> parameters() {
        return inner.parameters();
    }

    @Override
    public void saveWeights(Path dir) throws IOException {
        inner.saveWeights(dir);
    }

    @Override
    public void loadWeights(Path dir) throws IOException {
        inner.loadWeights(dir);
    }

    @Override
    public boolean decays(String name) {
        return inner.decays(name);
    }

    @Override
    public Map<String, List<long[]>> frozenRows() {
        return inner.frozenRows();
    }

    @Override
    public void setTraining(boolean training) {
        inner.setTraining(training);
    }
}
