/**
 * Distributed training: where a process sits in a job ({@link dev.jtune.trainer.dist.DistEnv}), the
 * rendezvous {@link dev.jtune.trainer.dist.Store} ({@link dev.jtune.trainer.dist.TcpStore}, a client, and
 * {@link dev.jtune.trainer.dist.TcpStoreServer}, which node 0's launcher serves at {@code MASTER_ADDR:MASTER_PORT}),
 * Slurm's task variables ({@link dev.jtune.trainer.dist.Slurm}), and collective operations
 * ({@link dev.jtune.trainer.dist.ProcessGroup}).
 *
 * <p>Under the launcher ({@code JTUNE_AGENT_STORE=1}) the store already runs: workers connect with
 * {@code TcpStore.connect(MASTER_ADDR, MASTER_PORT, timeout)} and keep their keys under
 * {@code attempt/$JTUNE_RESTART_COUNT/}. Without it (e.g. {@code srun} starting every worker), rank 0 serves one
 * with {@code TcpStoreServer.start}.
 */
package dev.jtune.trainer.dist;
