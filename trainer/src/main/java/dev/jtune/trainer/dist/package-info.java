/**
 * Distributed training: where a process sits in a job ({@link dev.jtune.trainer.dist.DistEnv}), the
 * rendezvous {@link dev.jtune.trainer.dist.Store}, and collective operations
 * ({@link dev.jtune.trainer.dist.ProcessGroup}); {@link dev.jtune.trainer.dist.ProcessGroups#forEnvironment}, the
 * one place where the CLI gets its group (connect the TCP store and ring there); FSDP's sharded frozen base weights
 * ({@link dev.jtune.trainer.dist.ShardedWeights}, a {@code LinearFactory} of
 * {@link dev.jtune.trainer.dist.ShardedLinear}s, dense fp32/fp16/bf16; NF4 not yet).
 */
package dev.jtune.trainer.dist;
