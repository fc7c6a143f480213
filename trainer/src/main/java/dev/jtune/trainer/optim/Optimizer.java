package dev.jtune.trainer.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.trainer.dist.ProcessGroup;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Predicate;

/**
 * What a training step asks of its optimizer, whether each rank holds the whole state ({@link AdamW}, data
 * parallel or one process) or a shard of it ({@link ShardedAdamW}, FSDP). The step calls, in order:
 * {@link #reduceGradients}, {@link #scaleGradients} and {@link #gradientsFinite} (fp16), {@link #clipGradients},
 * {@link #step}, {@link #zeroGradients}; every rank calls each of them (some are collectives).
 */
public interface Optimizer extends AutoCloseable {
    /**
     * The optimizer of one rank of {@code group}: {@link ShardedAdamW} (the decoder layers' trainable tensors
     * themselves sharded) when {@code shard} and the world has several ranks, else {@link AdamW}. With several ranks
     * the trainable tensors start from rank 0's values (a broadcast), and every tensor whose gradient goes through
     * {@code .grad} gets a zero one, so that gradients can be summed in place even by a rank that ran nothing.
     *
     * @param params the trainable fp32 tensors by name, already loaded (fresh or from a checkpoint)
     * @param parent the optimizer's memory lives in a sub-manager of this
     */
    static Optimizer create(Map<String, NDArray> params, AdamW.Hyper hyper, Predicate<String> decays,
            ProcessGroup group, boolean shard, NDManager parent) {
        if (hyper.variant() == AdamW.Variant.MUON) {
            if (group.worldSize() > 1) {
                throw new IllegalArgumentException("optimizer: muon runs in one process here: dion's Muon"
                        + " orthogonalizes whole matrices spread over ranks, which jtune's data parallel and FSDP do not"
                        + " do; run with one process, or give optimizer: adamw_torch");
            }
            return new Muon(params, hyper, decays, parent);
        }
        boolean sharded = shard && group.worldSize() > 1;
        if (group.worldSize() > 1) {
            // Sharded layers' gradients never reach .grad (FSDP hands them to the optimizer's chunks).
            Replicas.materializeGradients(params.entrySet().stream()
                    .filter(e -> !sharded || ShardedAdamW.unitOf(e.getKey()) < 0)
                    .map(Map.Entry::getValue).toList(), parent);
            Replicas.broadcast(group, params.values(), parent);
        }
        return sharded ? new ShardedAdamW(params, hyper, decays, group, parent, true)
                : new AdamW(params, hyper, decays, group, parent);
    }

    /**
     * Sums the gradients of the micro-batches every rank ran: an all-reduce of the whole gradients, or a
     * reduce-scatter into this rank's chunk; nothing in a world of one.
     */
    void reduceGradients();

    /** Multiplies the reduced gradients by {@code factor} in place (fp16 unscaling). */
    void scaleGradients(double factor);

    /** Whether every rank's reduced gradients are finite. */
    boolean gradientsFinite();

    /**
     * {@code clip_grad_norm_} over the reduced gradients of all ranks: returns the global L2 norm before
     * clipping; {@code maxNorm <= 0} only measures.
     */
    double clipGradients(double maxNorm);

    /** One AdamW update with learning rate {@code lr} from the reduced gradients. */
    void step(double lr);

    /** Sets every trainable tensor's accumulated gradient to zero, ready for the next step's micro-batches. */
    void zeroGradients();

    /**
     * Checks that the ranks' replicas of the trainable tensors are identical after {@code step} (a collective).
     * Sharded tensors have one owner per element: nothing to compare there.
     */
    void checkReplicas(long step);

    /**
     * The full state, gathered from every rank (a collective: every rank calls it), ready for one rank to write.
     */
    StateWriter gatherState();

    /** Writes a gathered state as one safetensors file (AdamW's checkpoint format, independent of the world size). */
    @FunctionalInterface
    interface StateWriter {
        void write(Path file);
    }

    /** Restores the state (this rank's part of it) from a file a {@link StateWriter} wrote. */
    void load(Path file);

    /**
     * From now on treats the tensors {@code frozen} names as having no gradient (LISA's frozen layers, as torch with
     * {@code requires_grad=False}): no update at all (no weight decay, no moment decay, the step count kept), left
     * out of the gradient norm and the finiteness check; their state stays for when they train again. The
     * predicate replaces the previous one.
     *
     * @throws UnsupportedOperationException for an optimizer that cannot skip tensors (the sharded one)
     */
    default void freeze(Predicate<String> frozen) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " cannot freeze tensors per step");
    }

    /** Makes every trainable tensor whole on this rank (for export, generation, checkpoints); no-op if never sharded. */
    default void gatherAll() {}

    /** Gives up the parts of the trainable tensors other ranks own, after {@link #gatherAll}; no-op if never sharded. */
    default void releaseAll() {}

    /** Frees the optimizer's state. */
    @Override
    void close();
}
