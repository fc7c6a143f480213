/**
 * The torchrun-equivalent launcher: {@code ./launch.sh --nproc-per-node N [--nnodes M --node-rank R
 * --master-addr HOST --master-port PORT] [--max-restarts K] CONFIG.yml}.
 *
 * <p>Public surface: {@link dev.jtune.trainer.launch.LaunchOptions} (the flags, parsed from the command line
 * with Slurm defaults) and {@link dev.jtune.trainer.launch.Launcher#run} (rendezvous over the
 * {@link dev.jtune.trainer.dist.TcpStore} node 0 serves, the worker JVMs with torchrun's variables, per-rank logs,
 * each worker's pid on the console ({@code started worker rank K (local rank L on node N) as pid P}), failure reports, restarts, signal forwarding). Workers see {@code RANK}, {@code LOCAL_RANK}, {@code WORLD_SIZE},
 * {@code LOCAL_WORLD_SIZE}, {@code MASTER_ADDR}, {@code MASTER_PORT} (the launcher's store;
 * {@code JTUNE_AGENT_STORE=1}), {@code GROUP_RANK}, {@code JTUNE_RESTART_COUNT} (= {@code TORCHELASTIC_RESTART_COUNT})
 * and, after a restart, {@code JTUNE_RESUME=auto}, which the train verb takes as {@code resume_from_checkpoint: auto}.
 */
package dev.jtune.trainer.launch;
