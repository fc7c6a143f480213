package dev.jtune.trainer.dist;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.llama.Linear;
import dev.jtune.model.llama.LlamaModel;
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
 * <p>Dense bases only (fp32, fp16, bf16): NF4 projections are not sharded yet.
 */
public final class ShardedWeights implements LlamaModel.LinearFactory {
    private static final Pattern LAYER = Pattern.compile("model\\.layers\\.(\\d+)\\..*");

    private final ProcessGroup group;
    private final LlamaModel.LinearFactory others;
    private final Map<Integer, List<ShardedLinear>> layers = new TreeMap<>();
    private long gatheredBytes;
    private long peakGatheredBytes;

    /**
     * @param others builds the projections outside the decoder layers (e.g. dense {@code lm_head})
     */
    public ShardedWeights(ProcessGroup group, LlamaModel.LinearFactory others) {
        this.group = group;
        this.others = others;
    }

    @Override
    public Linear create(String name, NDArray weight) {
        Matcher m = LAYER.matcher(name);
        if (!m.matches()) {
            return others.create(name, weight);
        }
        ShardedLinear l = new ShardedLinear(group, weight, this);
        layers.computeIfAbsent(Integer.parseInt(m.group(1)), k -> new ArrayList<>()).add(l);
        return l;
    }

    @Override
    public Linear createStored(String name, long out, long in, NDManager manager) {
        return LAYER.matcher(name).matches() ? null : others.createStored(name, out, in, manager);
    }

    /** Frees the gathered weights of decoder layer {@code layer}. */
    public void release(int layer) {
        for (ShardedLinear l : layers.getOrDefault(layer, List.of())) {
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
        return layers.values().stream().flatMap(List::stream).mapToLong(ShardedLinear::shardBytes).sum();
    }

    /** Bytes of the whole sharded weights (what one process would hold without FSDP). */
    public long totalBytes() {
        return layers.values().stream().flatMap(List::stream).mapToLong(ShardedLinear::fullBytes).sum();
    }

    /** Bytes of the largest decoder layer's whole projections. */
    public long largestLayerBytes() {
        return layers.values().stream()
                .mapToLong(ls -> ls.stream().mapToLong(ShardedLinear::fullBytes).sum()).max().orElse(0);
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
