package dev.jtune.trainer.dist;

import ai.djl.ndarray.NDArray;

/**
 * Collective operations among the ranks of a job (torch.distributed's process group). Every rank calls the
 * same operations in the same order with arrays of the same shape and dtype. Results are exact sums in rank
 * order where the backend allows it, so runs are reproducible.
 *
 * <p>Implementations: a ring over TCP for CPU tensors, NCCL for CUDA tensors, and {@link #single()}.
 */
public interface ProcessGroup extends AutoCloseable {
    int rank();

    int worldSize();

    /** Replaces {@code x} (in place) by the elementwise sum of every rank's {@code x}. */
    void allReduceSum(NDArray x);

    /**
     * Every rank's {@code x} concatenated along dimension 0 in rank order: shape [worldSize * d0, ...]; a new
     * array in {@code x}'s manager.
     */
    NDArray allGather(NDArray x);

    /**
     * {@code x} [worldSize * n, ...] summed over ranks, and of the sum this rank's chunk {@code [rank * n,
     * (rank + 1) * n)}: a new array [n, ...] in {@code x}'s manager.
     */
    NDArray reduceScatterSum(NDArray x);

    /** Replaces {@code x} (in place) by rank {@code root}'s {@code x}. */
    void broadcast(NDArray x, int root);

    /** Returns when every rank has called it. */
    void barrier();

    @Override
    void close();

    /** The world of one: every operation is the identity. */
    static ProcessGroup single() {
        return new ProcessGroup() {
            @Override
            public int rank() {
                return 0;
            }

            @Override
            public int worldSize() {
                return 1;
            }

            @Override
            public void allReduceSum(NDArray x) {}

            @Override
            public NDArray allGather(NDArray x) {
                return x.duplicate();
            }

            @Override
            public NDArray reduceScatterSum(NDArray x) {
                return x.duplicate();
            }

            @Override
            public void broadcast(NDArray x, int root) {}

            @Override
            public void barrier() {}

            @Override
            public void close() {}
        };
    }
}
