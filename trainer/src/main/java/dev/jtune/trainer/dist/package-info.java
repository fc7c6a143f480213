/**
 * Distributed training: where a process sits in a job ({@link dev.jtune.trainer.dist.DistEnv}), the
 * rendezvous {@link dev.jtune.trainer.dist.Store} ({@link dev.jtune.trainer.dist.TcpStore}, a client, and
 * {@link dev.jtune.trainer.dist.TcpStoreServer}, which node 0's launcher serves at {@code MASTER_ADDR:MASTER_PORT}),
 * Slurm's task variables ({@link dev.jtune.trainer.dist.Slurm}), and collective operations
 * ({@link dev.jtune.trainer.dist.ProcessGroup}); {@link dev.jtune.trainer.dist.ProcessGroups#forEnvironment}, the
 * one place where the CLI gets its group; FSDP's sharded frozen base weights
 * ({@link dev.jtune.trainer.dist.ShardedWeights}, a {@code LinearFactory} of
 * {@link dev.jtune.trainer.dist.ShardedLinear}s for dense fp32/fp16/bf16 bases and, with
 * {@link dev.jtune.trainer.dist.ShardedWeights#nf4}, {@link dev.jtune.trainer.dist.ShardedNf4Linear}s for NF4
 * (QLoRA) bases: each rank keeps 1/W of every layer's packed codes and absmax codes, cut at block boundaries, and
 * the small statistics whole; the gathered codes dequantize bit for bit as the unsharded layer's); and
 * {@link dev.jtune.trainer.dist.RankZero}, work that rank 0 does for everyone followed by a barrier that tells the
 * others whether it succeeded.
 *
 * <p>Under the launcher ({@code JTUNE_AGENT_STORE=1}) the store already runs: workers connect with
 * {@code TcpStore.connect(MASTER_ADDR, MASTER_PORT, timeout)} and keep their keys under
 * {@code attempt/$JTUNE_RESTART_COUNT/}. Without it (e.g. {@code srun} starting every worker), rank 0 serves one
 * with {@code TcpStoreServer.start}.
 *
 * <p><b>Collectives.</b> {@link dev.jtune.trainer.dist.ProcessGroups#create(DistEnv, Store, String,
 * java.time.Duration, boolean)} picks the implementation: {@link dev.jtune.trainer.dist.RingProcessGroup} for CPU
 * tensors, a ring over TCP written in Java in the manner of Gloo (reduce-scatter then all-gather over n chunks; each
 * chunk summed once in a fixed order, so every rank holds bit-identical sums; no MPI or Gloo library is needed,
 * none being installed here or on CI, and MPI would want to start the processes itself), and
 * {@link dev.jtune.trainer.dist.NcclProcessGroup} for CUDA tensors, NCCL's C API through the foreign function API,
 * loaded only when made (rank 0's unique id travels through the store). Both work on the tensors' memory in place
 * (addresses from DJL's native layer). Every rank must arrive within the timeout given at creation, and a ring
 * collective that makes no progress for that long fails; a peer that exits fails its neighbours at once. Failures
 * are {@link dev.jtune.trainer.dist.DistException}s naming the rank; a failed group is unusable.
 */
package dev.jtune.trainer.dist;
