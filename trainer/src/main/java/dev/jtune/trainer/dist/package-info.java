/**
 * Distributed training: where a process sits in a job ({@link dev.jtune.trainer.dist.DistEnv}), the
 * rendezvous {@link dev.jtune.trainer.dist.Store}, and collective operations
 * ({@link dev.jtune.trainer.dist.ProcessGroup}).
 */
package dev.jtune.trainer.dist;
