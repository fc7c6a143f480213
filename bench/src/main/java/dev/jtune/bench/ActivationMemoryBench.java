package dev.jtune.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.model.engine.Autograd;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.Attention;
import dev.jtune.model.llama.DecoderLayer;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.ForwardContext;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.Linear;
import dev.jtune.model.llama.Mlp;
import dev.jtune.model.llama.Rope;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Supplier;
import dev.jtune.lora.LoraLinear;

/**
 * What one decoder layer keeps for backward (issue 14): {@code bench/activations.sh CONFIG [SEQ]} builds one layer
 * of the checkpoint's shape (bf16, LoRA r=16 dropout 0.05 on all seven projections over dense bf16 bases: a frozen
 * base keeps only its weight, which NF4 shares across layers) and prints, per part, the growth of the process's RSS
 * while the part's autograd graph is alive, minus its output. libtorch maps every allocation of 1 MiB or more by
 * itself (Torch's mallopt), so the RSS follows the kept tensors; two rounds, the second without first-use costs.
 * Graph optimization off, as Trainer.run runs the kernels.
 */
public final class ActivationMemoryBench {
    private ActivationMemoryBench() {}


    static long rss() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (l.startsWith("VmRSS:")) {
                    return Long.parseLong(l.replaceAll("\\D", "")) * 1024;
                }
            }
        } catch (java.io.IOException e) {
            throw new RuntimeException(e);
        }
        throw new IllegalStateException();
    }

    static NDArray bf16(NDManager m, Shape s, double scale) {
        NDArray f = m.randomNormal(0, (float) scale, s, DataType.FLOAT32);
        NDArray b = Kernels.get().cast(f, Dtype.BF16);
        f.close();
        return b;
    }

    static LoraLinear lora(NDManager m, String name, int out, int in) {
        LoraLinear l = LoraLinear.initialise(new DenseLinear(bf16(m, new Shape(out, in), 0.02)), name, 16, 2.0, 0.05, 1, m);
        l.setTraining(true);
        return l;
    }

    /**
     * Kept bytes of {@code f} with autograd, the result excluded (RSS with the graph alive minus before), and the
     * seconds of its forward and of its backward from an upstream gradient of ones.
     */
    static void measure(String what, NDManager m, Supplier<NDArray> f) {
        Torch.releaseFreeMemory();
        long r0 = rss();
        long t0 = System.nanoTime();
        NDArray y = Autograd.withGrad(f);
        long t1 = System.nanoTime();
        long r1 = rss();
        long out = y.getShape().size() * 2;
        NDArray ones = Kernels.get().cast(m.ones(y.getShape()), Dtype.BF16);
        long t2 = System.nanoTime();
        Autograd.backward(y, ones);
        long t3 = System.nanoTime();
        System.out.printf("%-34s kept %8.2f MiB (RSS delta %.2f MiB, output %.2f MiB); forward %7.1f ms, backward %7.1f ms%n",
                what, (r1 - r0 - out) / 1048576.0, (r1 - r0) / 1048576.0, out / 1048576.0, (t1 - t0) / 1e6,
                (t3 - t2) / 1e6);
        ones.close();
        y.close();
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: bench/activations.sh CONFIG [SEQ]  (a Llama config.json, or the folder holding it)");
            System.exit(2);
        }
        int t = args.length > 1 ? Integer.parseInt(args[1]) : 512;
        Path source = Path.of(args[0]);
        String json = Files.readString(Files.isDirectory(source) ? source.resolve("config.json") : source);
        var root = (com.fasterxml.jackson.databind.node.ObjectNode) new ObjectMapper().readTree(json);
        root.put("num_hidden_layers", 1);
        LlamaConfig config = LlamaConfig.parse(root, args[0]);
        int E = config.hiddenSize();
        int F = config.intermediateSize();
        int H = config.numAttentionHeads();
        int KV = config.numKeyValueHeads();
        int D = config.headDim();
        double scale = 1 / Math.sqrt(D);
        Torch.setGraphOptimization(false); // as Trainer.run
        try (NDManager m = Torch.newManager()) {
            Rope rope = Rope.of(config, m);
            NDArray pos = m.arange(0, t, 1, DataType.INT64).reshape(1, t);
            NDList cs = rope.cosSin(pos, Dtype.BF16);
            NDArray seg = m.zeros(new Shape(1, t), DataType.INT64);
            ForwardContext ctx = new ForwardContext(cs.get(0), cs.get(1), seg, null);
            Attention att = new Attention(config, 0, lora(m, "q", H * D, E), lora(m, "k", KV * D, E),
                    lora(m, "v", KV * D, E), lora(m, "o", E, H * D));
            Mlp mlp = new Mlp(lora(m, "gate", F, E), lora(m, "up", F, E), lora(m, "down", E, F));
            DecoderLayer layer = new DecoderLayer(Kernels.get().cast(m.ones(new Shape(E)), Dtype.BF16), att,
                    Kernels.get().cast(m.ones(new Shape(E)), Dtype.BF16), mlp, 1e-5);
            for (int round = 0; round < 3; round++) {
                NDArray x = bf16(m, new Shape(1, t, E), 1);
                x.setRequiresGradient(true);
                NDArray q = bf16(m, new Shape(1, H, t, D), 1);
                q.setRequiresGradient(true);
                NDArray k = bf16(m, new Shape(1, KV, t, D), 1);
                k.setRequiresGradient(true);
                NDArray v = bf16(m, new Shape(1, KV, t, D), 1);
                v.setRequiresGradient(true);
                measure("round " + round + ": attention segments T=" + t, m, () -> Kernels.get().attentionSegments(q, k, v, seg, scale));
                measure("round " + round + ": attention causal T=" + t, m, () -> Kernels.get().attentionCausal(q, k, v, scale));
                Linear qp = att.q();
                measure("round " + round + ": lora q_proj T=" + t, m, () -> qp.forward(x));
                Linear qb = ((LoraLinear) qp).base();
                measure("round " + round + ": dense q_proj alone T=" + t, m, () -> qb.forward(x));
                Linear dp = mlp.down();
                NDArray xf = bf16(m, new Shape(1, t, F), 1);
                xf.setRequiresGradient(true);
                measure("round " + round + ": lora down_proj T=" + t, m, () -> dp.forward(xf));
                NDArray g = bf16(m, new Shape(1, t, F), 1);
                g.setRequiresGradient(true);
                Linear db = ((LoraLinear) dp).base();
                measure("round " + round + ": dense down_proj alone T=" + t, m, () -> db.forward(xf));
                measure("round " + round + ": swiglu T=" + t, m, () -> Kernels.get().swiglu(g, xf));
                NDArray w = Kernels.get().cast(m.ones(new Shape(E)), Dtype.BF16);
                measure("round " + round + ": rms norm T=" + t, m, () -> Kernels.get().rmsNorm(x, w, 1e-5));
                measure("round " + round + ": rope q T=" + t, m, () -> Kernels.get().rope(q, cs.get(0), cs.get(1)));
                measure("round " + round + ": attention block T=" + t, m, () -> att.forward(x, ctx));
                measure("round " + round + ": mlp block T=" + t, m, () -> mlp.forward(x));
                measure("round " + round + ": decoder layer T=" + t, m, () -> layer.forward(x, ctx));
            }
        }
    }
}
