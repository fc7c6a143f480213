package dev.jtune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.data.dataset.Batch;
import dev.jtune.data.dataset.Row;
import dev.jtune.data.dataset.Sample;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.Linear;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsWriter;
import dev.jtune.testkit.TinyLlama;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Hand-made batches over {@link TinyLlama}'s vocabulary and a test-only LoRA-like adapter on its preset, for the
 * trainer's tests.
 */
final class TinySetup {
    static final int PAD = 0;

    private TinySetup() {}

    /** A sample of random tokens whose first {@code prompt} labels are masked. */
    static Sample sample(Random r, int length, int prompt) {
        int[] ids = new int[length];
        int[] labels = new int[length];
        int vocab = TinyLlama.VOCAB;
        for (int i = 0; i < length; i++) {
            // A learnable pattern: mostly the previous token + 1, with some noise.
            ids[i] = i == 0 ? 1 + r.nextInt(vocab - 1) : (r.nextInt(4) == 0 ? 1 + r.nextInt(vocab - 1)
                    : 1 + (ids[i - 1] % (vocab - 1)));
            labels[i] = i < prompt ? Sample.IGNORE_INDEX : ids[i];
        }
        return new Sample(ids, labels);
    }

    /** Right-pads rows into a batch the way the data pipeline documents it. */
    static Batch collate(List<Row> rows) {
        int len = rows.stream().mapToInt(Row::length).max().orElseThrow();
        int n = rows.size() * len;
        int[] ids = new int[n];
        int[] labels = new int[n];
        int[] pos = new int[n];
        int[] seg = new int[n];
        int[] mask = new int[n];
        boolean packed = false;
        for (int r = 0; r < rows.size(); r++) {
            Row row = rows.get(r);
            packed |= row.samples() > 1;
            int base = r * len;
            Arrays.fill(ids, base, base + len, PAD);
            Arrays.fill(labels, base, base + len, Sample.IGNORE_INDEX);
            int s = 0;
            for (int i = 0; i < len; i++) {
                if (i < row.length()) {
                    ids[base + i] = row.inputIds()[i];
                    labels[base + i] = row.labels()[i];
                    pos[base + i] = row.positionIds()[i];
                    while (i >= row.cuSeqlens()[s + 1]) s++;
                    seg[base + i] = s;
                    mask[base + i] = 1;
                } else {
                    pos[base + i] = pos[base + i - 1] + 1;
                    seg[base + i] = row.samples();
                }
            }
        }
        return new Batch(rows.size(), len, ids, labels, pos, seg, mask, packed);
    }

    /** {@code count} batches of {@code rowsPerBatch} single-sample rows of varying length (≤ maxLen). */
    static List<Batch> batches(long seed, int count, int rowsPerBatch, int maxLen) {
        Random r = new Random(seed);
        List<Batch> out = new ArrayList<>();
        for (int b = 0; b < count; b++) {
            List<Row> rows = new ArrayList<>();
            for (int i = 0; i < rowsPerBatch; i++) {
                int len = maxLen / 2 + r.nextInt(maxLen / 2 + 1);
                rows.add(Row.of(sample(r, len, 1 + r.nextInt(4))));
            }
            out.add(collate(rows));
        }
        return out;
    }

    /** A batch whose rows pack several samples each. */
    static Batch packedBatch(long seed, int rows, int len) {
        Random r = new Random(seed);
        List<Row> out = new ArrayList<>();
        for (int i = 0; i < rows; i++) {
            int a = len / 3 + r.nextInt(len / 4);
            out.add(Row.pack(List.of(sample(r, a, 2), sample(r, len - a, 3))));
        }
        return collate(out);
    }

    /**
     * A test-only LoRA-like adapter: each attention/MLP projection computes {@code base(x) + (x Aᵀ) Bᵀ · scale}
     * with fp32 A [r,in] (random) and B [out,r] (zeros), the base in the model's dtype.
     */
    static final class TinyAdapter implements TrainableModel {
        final Map<String, NDArray> params = new LinkedHashMap<>();
        LlamaModel model;

        static TinyAdapter load(NDManager m, long seed, Dtype dtype, int rank) {
            return load(m, seed, dtype, rank, (name, weight) -> new DenseLinear(weight));
        }

        /** With the frozen base projections of the decoder layers built by {@code base}. */
        static TinyAdapter load(NDManager m, long seed, Dtype dtype, int rank, LlamaModel.LinearFactory base) {
            TinyAdapter a = new TinyAdapter();
            Random r = new Random(seed + 1);
            LlamaConfig c = TinyLlama.preset();
            a.model = LlamaModel.load(c, TinyLlama.weights(c, seed), dtype, m, (name, weight) -> {
                if (!name.contains("layers")) {
                    return new DenseLinear(weight);
                }
                long out = weight.getShape().get(0);
                long in = weight.getShape().get(1);
                float[] av = new float[(int) (rank * in)];
                for (int i = 0; i < av.length; i++) av[i] = (float) (r.nextGaussian() * 0.05);
                NDArray aw = m.create(av, new Shape(rank, in));
                NDArray bw = m.zeros(new Shape(out, rank));
                a.params.put("base_model.model." + name + ".lora_A.weight", aw);
                a.params.put("base_model.model." + name + ".lora_B.weight", bw);
                return new AdapterLinear(base.create(name, weight), aw, bw, dtype);
            });
            return a;
        }

        @Override
        public LlamaModel model() {
            return model;
        }

        @Override
        public Map<String, NDArray> parameters() {
            return params;
        }

        @Override
        public void saveWeights(Path dir) {
            List<SafetensorsWriter.Entry> entries = new ArrayList<>();
            for (var e : params.entrySet()) {
                entries.add(SafetensorsWriter.Entry.ofFloats(e.getKey(), e.getValue().getShape().getShape(),
                        e.getValue().toFloatArray(), SafetensorsDtype.F32));
            }
            SafetensorsWriter.write(dir.resolve("adapter_model.safetensors"), entries, Map.of());
        }
    }

    record AdapterLinear(Linear base, NDArray a, NDArray b, Dtype dtype) implements Linear {
        @Override
        public void prepareBackward() {
            base.prepareBackward();
        }

        @Override
        public NDArray forward(NDArray x) {
            Kernels k = Kernels.get();
            NDArray y = base.forward(x);
            NDArray x32 = dtype == Dtype.FP32 ? x : k.cast(x, Dtype.FP32);
            // The scale as a libtorch-made scalar (NDManager.full), not DJL's mul(2.0f): that one wraps the number in a
            // tensor over Java memory and closes it at once, while autograd keeps it for backward, so the gradient read
            // freed memory whenever a GC ran between forward and backward.
            NDArray scale = x32.getManager().full(new Shape(), 2.0f);
            NDArray delta = ai.djl.nn.core.Linear.linear(ai.djl.nn.core.Linear.linear(x32, a).singletonOrThrow(), b)
                    .singletonOrThrow().mul(scale);
            scale.close();
            return y.add(dtype == Dtype.FP32 ? delta : k.cast(delta, dtype));
        }

        @Override
        public long inFeatures() {
            return base.inFeatures();
        }

        @Override
        public long outFeatures() {
            return base.outFeatures();
        }

        @Override
        public void close() {
            base.close();
        }
    }
}
