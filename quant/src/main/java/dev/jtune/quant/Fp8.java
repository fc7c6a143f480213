package dev.jtune.quant;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import dev.jtune.model.engine.Autograd;
import dev.jtune.model.engine.KernelLibrary;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.FakeQuant;
import dev.jtune.model.llama.Linear;
import dev.jtune.model.llama.LlamaModel;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.Set;

/**
 * fp8 training as Axolotl runs it ({@code fp8: true}, 067b021): accelerate 1.15's {@code mixed_precision="fp8"} with
 * {@code AORecipeKwargs(config=Float8LinearConfig(...))} swaps linears for torchao's {@code Float8Linear} (v0.18.0,
 * the default "tensorwise" recipe): each of the three GEMMs of a projection — output {@code x wᵀ}, input gradient
 * {@code g w}, weight gradient {@code gᵀ x} — multiplies operands cast to float8 with a dynamic per-tensor scale
 * (input and weight e4m3, output gradient e5m2). On a CPU this is torchao's {@code emulate=True}: the same casts, the
 * products of the dequantized operands in fp32, each result rounded once to the operand's dtype — the numerics of an
 * fp8 GPU's scaled GEMM up to its summation order, and no speed gain. The kernels are {@code fp8.torchscript.py}'s.
 *
 * <p>The output gradient's scale depends on that gradient's own maximum, which no autograd formula can express: the
 * forward returns a leaf where the gradient stops, and an {@link Autograd.Deferred} step quantizes it and continues
 * backward into the input and the weight once it is complete. Projections that share their input (q/k/v, gate/up)
 * sum their input gradients first, in the order libtorch's autograd would (latest first), and go on as one.
 */
public final class Fp8 implements FakeQuant {
    private static final KernelLibrary LIBRARY = new KernelLibrary(Fp8.class, "Fp8Ops", "fp8.torchscript.py");

    /** Path segments of router linears that Axolotl keeps out of fp8 (monkeypatch/accelerate/float8_moe_filter.py). */
    private static final Set<String> ROUTER_NAMES = Set.of("gate", "router");

    /** This thread's latest group of projections over one input, while its backward is pending. */
    private static final ThreadLocal<Group> LATEST = new ThreadLocal<>();

    @Override
    public NDArray activation(NDArray x) {
        throw new IllegalStateException("fp8 quantizes inside its product: use linear(x, w)");
    }

    @Override
    public NDArray weight(NDArray w) {
        throw new IllegalStateException("fp8 quantizes inside its product: use linear(x, w)");
    }

    /** Float8Linear's output for {@code x} [..., in] and {@code w} [out, in], without autograd. */
    static NDArray forward(NDArray x, NDArray w) {
        return LIBRARY.ops().call("forward_mm", x, w);
    }

    @Override
    public NDArray linear(NDArray x, NDArray w) {
        if (!Autograd.gradMode()) {
            return forward(x, w);
        }
        boolean xGrad = LIBRARY.ops().callLong("requires_grad", x) != 0;
        boolean wGrad = LIBRARY.ops().callLong("requires_grad", w) != 0;
        if (!xGrad && !wGrad) {
            return forward(x, w);
        }
        NDList out = LIBRARY.ops().callAll("forward_for_backward", x, w);
        NDArray y = out.get(0);
        y.setRequiresGradient(true);
        Record r = new Record(y, out.get(1), out.get(2), xGrad, wGrad);
        Group g = LATEST.get();
        if (g != null && g.source == x && !g.started && !g.released()) {
            g.records.add(r);
        } else {
            g = new Group(x, r);
            LATEST.set(g);
            Autograd.defer(g);
        }
        return y;
    }

    /**
     * torchao's backward for one projection: the input's and the weight's gradients from the output's {@code g}.
     *
     * @return the gradient of {@code x2} [M, in] and of {@code w} [out, in]
     */
    static NDList backward(NDArray x2, NDArray w, NDArray g) {
        return LIBRARY.ops().callAll("backward_mm", x2, w, g);
    }

    /** One projection's forward: its output leaf, its input as [M, in], its weight, and which of them train. */
    private record Record(NDArray y, NDArray x2, NDArray w, boolean xGrad, boolean wGrad) {}

    /** Consecutive projections over the same input tensor, in forward order. */
    private static final class Group implements Autograd.Deferred {
        final NDArray source;
        final List<Record> records = new ArrayList<>();
        boolean started;

        Group(NDArray source, Record first) {
            this.source = source;
            records.add(first);
        }

        @Override
        public boolean ready() {
            for (Record r : records) {
                NDArray g = Autograd.gradient(r.y);
                if (g == null) {
                    return false;
                }
                g.close();
            }
            return true;
        }

        @Override
        public boolean released() {
            return records.getFirst().y.isReleased();
        }

        @Override
        public void run() {
            started = true;
            NDArray inputGrad = null;
            NDArray x2 = null;
            // Latest first, as autograd runs the consumers of a shared input and adds their gradients.
            for (Record r : records.reversed()) {
                try (NDArray g = Autograd.gradient(r.y); NDList grads = backward(r.x2, r.w, g)) {
                    if (r.wGrad) {
                        Autograd.backwardRetaining(r.w, grads.get(1));
                    }
                    if (r.xGrad) {
                        NDArray gx = grads.get(0);
                        if (inputGrad == null) {
                            inputGrad = gx.duplicate();
                            x2 = r.x2;
                        } else {
                            NDArray sum = inputGrad.add(gx);
                            inputGrad.close();
                            inputGrad = sum;
                        }
                    }
                }
            }
            if (inputGrad != null) {
                Autograd.backwardRetaining(x2, inputGrad);
                inputGrad.close();
            }
            for (Record r : records) {
                r.x2.close();
                r.w.close();
            }
        }
    }

    /**
     * The linears accelerate converts (accelerate 1.15 {@code utils/ao.py}: {@code convert_model_to_fp8_ao} with
     * {@code filter_linear_layers} over {@code find_first_last_linear_layers}), with Axolotl's router filter: every
     * linear except the model's first and last in module order (for a decoder, layer 0's first projection and
     * {@code lm_head}), those whose input or output features are not divisible by 16, and MoE router linears (a path
     * segment {@code gate} or {@code router}).
     *
     * @param linears name → {in, out} in the model's module order, {@code lm_head} last
     */
    public static List<String> converted(SequencedMap<String, long[]> linears) {
        List<String> names = new ArrayList<>(linears.keySet());
        List<String> kept = new ArrayList<>();
        for (var e : linears.entrySet()) {
            String name = e.getKey();
            long in = e.getValue()[0];
            long out = e.getValue()[1];
            boolean router = List.of(name.split("\\.")).stream().anyMatch(ROUTER_NAMES::contains);
            if (in % 16 == 0 && out % 16 == 0 && !name.equals(names.getFirst()) && !name.equals(names.getLast())
                    && !router) {
                kept.add(name);
            }
        }
        return kept;
    }

    /**
     * Converts the projections of {@code model} that accelerate would ({@link #converted}) to fp8 training.
     *
     * @return the names of the converted projections
     * @throws IllegalArgumentException naming a projection to convert that is not dense (fp8 trains full weights)
     */
    public static List<String> attach(LlamaModel model, Fp8 fp8) {
        Map<String, Linear> linears = new LinkedHashMap<>(model.linears());
        linears.putIfAbsent("lm_head", model.lmHead()); // a tied head is an nn.Linear too, and the last one
        SequencedMap<String, long[]> dims = new LinkedHashMap<>();
        // transformers' module order, which decides the first linear: Phi-3's attention defines o_proj before
        // qkv_proj (modeling_phi3.Phi3Attention.__init__), jtune lists qkv_proj first.
        linears.forEach((n, l) -> {
            if (n.endsWith("self_attn.qkv_proj")) {
                String o = n.substring(0, n.length() - "qkv_proj".length()) + "o_proj";
                if (linears.containsKey(o)) {
                    dims.put(o, new long[] {linears.get(o).inFeatures(), linears.get(o).outFeatures()});
                }
            }
            dims.putIfAbsent(n, new long[] {l.inFeatures(), l.outFeatures()});
        });
        List<String> names = converted(dims);
        for (String n : names) {
            if (!(linears.get(n) instanceof DenseLinear)) {
                throw new IllegalArgumentException("fp8: " + n + " is a " + linears.get(n).getClass().getSimpleName()
                        + ", not a dense projection; fp8 training (torchao's Float8Linear) converts trainable dense"
                        + " weights");
            }
        }
        names.forEach(n -> ((DenseLinear) linears.get(n)).fakeQuantize(fp8));
        return names;
    }
}
