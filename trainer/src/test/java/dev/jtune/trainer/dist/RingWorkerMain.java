package dev.jtune.trainer.dist;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Torch;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;

/**
 * One rank of a two-process ring for {@link RingProcessesTest}: {@code RingWorkerMain STORE_DIR RANK MODE}.
 * MODE {@code all}: every collective, checked against plain-Java references, then prints {@code ok SHA256} of all
 * results (the parent compares the ranks' digests bit for bit). MODE {@code die}: after a barrier rank 1 prints
 * {@code ready} and waits until killed, rank 0 all-reduces until that fails and prints {@code failed: MESSAGE}.
 */
public final class RingWorkerMain {
    /**
     * Setup and stalled collectives: only a hang guard (the parent kills the children long before), since both
     * JVMs starting on a busy machine may take any time to meet, and the peer's death arrives as a closed socket.
     */
    private static final Duration HANG_GUARD = Duration.ofMinutes(10);

    private RingWorkerMain() {}

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        int rank = Integer.parseInt(args[1]);
        String mode = args[2];
        int n = 2;
        DistEnv env = new DistEnv(rank, rank, n, n, "127.0.0.1", 0);
        try (NDManager m = Torch.newManager();
                RingProcessGroup pg = RingProcessGroup.create(env, new FileStore(dir), "p", HANG_GUARD)) {
            if (mode.equals("die")) {
                pg.barrier();
                if (rank == 1) {
                    System.out.println("ready");
                    System.out.flush();
                    new java.util.concurrent.CountDownLatch(1).await(); // until killed
                }
                try {
                    while (true) {
                        pg.allReduceSum(m.create(new float[1_000_000]));
                    }
                } catch (DistException e) {
                    System.out.println("failed: " + e.getMessage());
                    System.exit(3);
                }
            }
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            for (int count : new int[] {0, 1, 7, 1_000_003}) {
                NDArray x = m.create(RingHarness.input(rank, count, count));
                pg.allReduceSum(x);
                float[] got = x.toFloatArray();
                float[] a = RingHarness.input(0, count, count);
                float[] b = RingHarness.input(1, count, count);
                for (int i = 0; i < count; i++) {
                    check(Math.abs(((double) a[i] + b[i]) - got[i]) <= 0x1p-24 * (Math.abs(a[i]) + Math.abs(b[i])),
                            "allReduce " + count + " at " + i);
                }
                digest.update(bytes(got));
            }
            NDArray rows = m.create(RingHarness.input(rank, 10, 3), new Shape(5, 2));
            float[] gathered = pg.allGather(rows).toFloatArray();
            float[] want = new float[20];
            System.arraycopy(RingHarness.input(0, 10, 3), 0, want, 0, 10);
            System.arraycopy(RingHarness.input(1, 10, 3), 0, want, 10, 10);
            check(java.util.Arrays.equals(want, gathered), "allGather order");
            float[] chunk = pg.reduceScatterSum(m.create(RingHarness.input(rank, 14, 4), new Shape(14))).toFloatArray();
            float[] a = RingHarness.input(0, 14, 4);
            float[] b = RingHarness.input(1, 14, 4);
            for (int i = 0; i < 7; i++) {
                int j = rank * 7 + i;
                check(Math.abs(((double) a[j] + b[j]) - chunk[i]) <= 0x1p-24 * (Math.abs(a[j]) + Math.abs(b[j])),
                        "reduceScatter at " + i);
            }
            for (int root = 0; root < n; root++) {
                NDArray x = m.create(RingHarness.input(rank, 1001, root));
                pg.broadcast(x, root);
                check(java.util.Arrays.equals(RingHarness.input(root, 1001, root), x.toFloatArray()), "broadcast " + root);
                digest.update(bytes(x.toFloatArray()));
            }
            pg.barrier();
            System.out.println("ok " + HexFormat.of().formatHex(digest.digest()));
        }
        System.exit(0);
    }

    private static byte[] bytes(float[] f) {
        ByteBuffer b = ByteBuffer.allocate(f.length * 4);
        b.asFloatBuffer().put(f);
        return b.array();
    }

    private static void check(boolean ok, String what) {
        if (!ok) {
            System.out.println("FAILED " + what);
            System.exit(2);
        }
    }
}
