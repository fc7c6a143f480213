package dev.jtune.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Torch;
import dev.jtune.trainer.dist.DistEnv;
import dev.jtune.trainer.dist.MemoryStore;
import dev.jtune.trainer.dist.RingProcessGroup;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * All-reduce bandwidth of the CPU ring ({@link RingProcessGroup}): two ranks as two threads of this JVM, each with its
 * own sockets over loopback, fp32 tensors of 1 MB .. 256 MB reduced in place through the public NDArray API. Prints
 * algorithm bandwidth (bytes / time) and bus bandwidth (algbw * 2(n-1)/n, as nccl-tests defines it), next to the
 * memory-copy bandwidth of this machine ({@code MemorySegment.copy} of 256 MB, best of 5) and the ratio.
 *
 * <p>{@code AllReduceBench [--max-mb M] [--seconds S]}: S is the time budget per size (default 2).
 */
public final class AllReduceBench {
    private AllReduceBench() {}

    private static final int WORLD = 2;

    public static void main(String[] args) throws Exception {
        int maxMb = 256;
        double seconds = 2;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--max-mb" -> maxMb = Integer.parseInt(args[++i]);
                case "--seconds" -> seconds = Double.parseDouble(args[++i]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]
                        + " (expected --max-mb M, --seconds S)");
            }
        }
        Torch.engine();
        double memcpy = memcpyGBs(256L << 20);
        System.out.printf(Locale.ROOT, "memcpy (MemorySegment.copy, 256 MB, best of 5): %.2f GB/s; cores %d; "
                + "load average %.2f%n", memcpy, Runtime.getRuntime().availableProcessors(), load());
        System.out.printf(Locale.ROOT, "%10s %8s %12s %14s %14s %14s%n", "size", "iters", "time/op ms", "algbw GB/s",
                "busbw GB/s", "busbw/memcpy");
        MemoryStore store = new MemoryStore();
        // one platform thread per rank (the common pool may have a single worker on two cores)
        ExecutorService ranks = Executors.newFixedThreadPool(WORLD);
        RingProcessGroup[] groups = new RingProcessGroup[WORLD];
        CompletableFuture<?>[] setup = new CompletableFuture<?>[WORLD];
        for (int r = 0; r < WORLD; r++) {
            int rank = r;
            setup[r] = CompletableFuture.runAsync(() -> groups[rank] = RingProcessGroup.create(
                    new DistEnv(rank, rank, WORLD, WORLD, "127.0.0.1", 0), store, "bench", Duration.ofSeconds(60)), ranks);
        }
        CompletableFuture.allOf(setup).join();
        double finalSeconds = seconds;
        try {
            for (long mb = 1; mb <= maxMb; mb *= 4) {
                long bytes = mb << 20;
                double[] perOp = new double[WORLD];
                int[] iters = new int[WORLD];
                CompletableFuture<?>[] run = new CompletableFuture<?>[WORLD];
                for (int r = 0; r < WORLD; r++) {
                    int rank = r;
                    run[r] = CompletableFuture.runAsync(() -> {
                        RingProcessGroup pg = groups[rank];
                        try (NDManager m = Torch.newManager()) {
                            NDArray x = m.ones(new Shape(bytes / 4), DataType.FLOAT32);
                            pg.allReduceSum(x); // warm-up
                            pg.barrier();
                            // rank 0 decides the count from the warm-up, so both ranks run the same number
                            long t0 = System.nanoTime();
                            pg.allReduceSum(x);
                            double one = (System.nanoTime() - t0) / 1e9;
                            NDArray n = m.create(new long[] {rank == 0 ? Math.max(3, (long) (finalSeconds / one)) : 0});
                            pg.allReduceSum(n);
                            int count = (int) n.toLongArray()[0];
                            pg.barrier();
                            long t1 = System.nanoTime();
                            for (int i = 0; i < count; i++) {
                                pg.allReduceSum(x);
                            }
                            perOp[rank] = (System.nanoTime() - t1) / 1e9 / count;
                            iters[rank] = count;
                        }
                    }, ranks);
                }
                CompletableFuture.allOf(run).join();
                double t = Math.max(perOp[0], perOp[1]);
                double algbw = bytes / t / 1e9;
                double busbw = algbw * 2.0 * (WORLD - 1) / WORLD;
                System.out.printf(Locale.ROOT, "%7d MB %8d %12.2f %14.2f %14.2f %14.2f%n", mb, iters[0], t * 1e3, algbw,
                        busbw, busbw / memcpy);
            }
        } finally {
            for (RingProcessGroup g : groups) {
                g.close();
            }
            ranks.shutdown();
        }
        System.out.printf(Locale.ROOT, "load average after: %.2f%n", load());
        System.exit(0);
    }

    /** Bytes copied per second by {@code MemorySegment.copy} between two native segments (best of 5), in GB/s. */
    static double memcpyGBs(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment src = a.allocate(bytes, 64);
            MemorySegment dst = a.allocate(bytes, 64);
            src.fill((byte) 1);
            dst.fill((byte) 2);
            double best = Double.MAX_VALUE;
            for (int i = 0; i < 5; i++) {
                long t0 = System.nanoTime();
                MemorySegment.copy(src, 0, dst, 0, bytes);
                best = Math.min(best, (System.nanoTime() - t0) / 1e9);
            }
            return bytes / best / 1e9;
        }
    }

    private static double load() {
        return ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
    }

}
