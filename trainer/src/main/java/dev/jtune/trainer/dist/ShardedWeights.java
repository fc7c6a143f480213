package dev.jtune.trainer.dist;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.llama.Linear;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.quant.Nf4Linear;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * FSDP for frozen base weights: a {@link LlamaModel.LinearFactory} that turns every decoder-layer projection
 * ({@code model.layers.N.*}) into a {@link ShardedLinear} and leaves the others ({@code lm_head}) to the base
 * factory; it then frees a layer's gathered weights on {@link #release(int)} and counts the bytes held.
 *
 * <p>Two kinds of base: dense (fp32, fp16, bf16; {@link #ShardedWeights}), where the layer projections' dense
 * weights are cut into {@link ShardedLinear}s, and NF4 ({@link #nf4}), where the base factory builds each layer
 * projection as an {@link Nf4Linear} (quantized from the dense weight, or read as stored) which is then cut, in its
 * packed form, into a {@link ShardedNf4Linear}.
 */
public final class ShardedWeights implements LlamaModel.LinearFactory {
    private static final Pattern LAYER = Pattern.compile("model\\.(?:language_model\\.)?layers\\.(\\d+)\\..*");

    private final ProcessGroup group;
    private final LlamaModel.LinearFactory others;
    private final boolean nf4;
    private final Map<Integer, List<ShardedProjection>> layers = new TreeMap<>();
    private long gatheredBytes;
    private long peakGatheredBytes;

    /**
     * @param others builds the projections outside the decoder layers (e.g. dense {@code lm_head})
     */
    public ShardedWeights(ProcessGroup group, LlamaModel.LinearFactory others) {
        this(group, others, false);
    }

    private ShardedWeights(ProcessGroup group, LlamaModel.LinearFactory base, boolean nf4) {
        this.group = group;
        this.others = base;
        this.nf4 = nf4;
    }

    /**
     * FSDP over an NF4 base: {@code base} (e.g. {@code Nf4.linearFactory()} or {@code Nf4Checkpoint.linearFactory()})
     * builds every projection; those of decoder layers must be {@link Nf4Linear}s and are sharded in NF4 form.
     */
    public static ShardedWeights nf4(ProcessGroup group, LlamaModel.LinearFactory base) {
        return new ShardedWeights(group, base, true);
    }

    @Override
    public Linear create(String name, NDArray weight) {
        Matcher m = LAYER.matcher(name);
        if (!m.matches()) {
            return others.create(name, weight);
        }
        if (nf4) {
            NDManager parent = weight.getManager();
            return add(m, shardNf4(name, others.create(name, weight), parent));
        }
        return add(m, new ShardedLinear(group, weight, this));
    }

    @Override
    public Linear createStored(String name, long out, long in, NDManager manager) {
        Matcher m = LAYER.matcher(name);
        if (!m.matches()) {
            return others.createStored(name, out, in, manager);
        }
        if (!nf4) {
            return null;
        }
        Linear stored = others.createStored(name, out, in, manager);
        return stored == null ? null : add(m, shardNf4(name, stored, manager));
    }

    /** NF4 decoder-layer projections quantized straight from the checkpoint, then sharded; null for a dense base. */
    @Override
    public Linear createFromValues(String name, long out, long in, java.util.function.Supplier<float[]> values,
            dev.jtune.model.engine.Dtype dtype, NDManager manager) {
        Matcher m = LAYER.matcher(name);
        if (!m.matches()) {
            return others.createFromValues(name, out, in, values, dtype, manager);
        }
        if (!nf4) {
            return null;
        }
        Linear built = others.createFromValues(name, out, in, values, dtype, manager);
        return built == null ? null : add(m, shardNf4(name, built, manager));
    }

    private ShardedNf4Linear shardNf4(String name, Linear built, NDManager parent) {
        if (!(built instanceof Nf4Linear q)) {
            built.close();
            throw new IllegalArgumentException(name + ": FSDP over an NF4 base needs the base factory to quantize every"
                    + " decoder-layer projection, got " + built.getClass().getSimpleName());
        }
        return new ShardedNf4Linear(group, q, parent, this);
    }

    private <L extends ShardedProjection> L add(Matcher layerName, L l) {
        layers.computeIfAbsent(Integer.parseInt(layerName.group(1)), k -> new ArrayList<>()).add(l);
        return l;
    }

    /** Frees the gathered weights of decoder layer {@code layer}. */
    public void release(int layer) {
        for (ShardedProjection l : layers.getOrDefault(layer, List.of())) {
            l.release();
        }
    }

    /** Frees every gathered weight. */
    public void releaseAll() {
        layers.keySet().forEach(this::release);
    }

    void gathered(long bytes) {
        gatheredBytes += bytes;
        peakGatheredBytes = Math.max(peakGatheredBytes, gatheredBytes);
    }

    void released(long bytes) {
        gatheredBytes -= bytes;
    }

    /** Bytes of the chunks this rank holds for good. */
    public long shardBytes() {
        return layers.values().stream().flatMap(List::stream).mapToLong(ShardedProjection::shardBytes).sum();
    }

    /** Bytes of the whole sharded weights (what one process would hold without FSDP). */
    public long totalBytes() {
        return layers.values().stream().flatMap(List::stream).mapToLong(ShardedProjection::fullBytes).sum();
    }

    /** Bytes one gather of the largest decoder layer materializes (its whole weights; NF4: packed and absmax codes). */
    public long largestLayerBytes() {
        return layers.values().stream()
                .mapToLong(ls -> ls.stream().mapToLong(ShardedProjection::gatherBytes).sum()).max().orElse(0);
    }

    /** Bytes of gathered weights alive now. */
    public long gatheredBytes() {
        return gatheredBytes;
    }

    /** The most gathered bytes alive at once so far. */
    public long peakGatheredBytes() {
        return peakGatheredBytes;
    }

    /** Number of sharded decoder layers. */
    public int layerCount() {
        return layers.size();
    }
}
