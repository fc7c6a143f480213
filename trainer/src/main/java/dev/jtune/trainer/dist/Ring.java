package dev.jtune.trainer.dist;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.time.Duration;

/**
 * A ring of TCP connections among the ranks, and the collectives on raw memory that run over it, in the manner of
 * Gloo's ring algorithms. Rank r sends only to its right neighbour r+1 and receives only from its left neighbour
 * r-1 (mod n), each over its own connection; one thread drives both directions through a selector, so a step's send
 * and receive overlap and no socket buffer can deadlock the ring.
 *
 * <p>Memory is split into n chunks, chunk c ending on rank c. Reduce-scatter: at step s (0..n-2) rank r sends
 * chunk (r-s-1) mod n and adds the chunk (r-s-2) mod n that arrives into its own. So chunk c is summed exactly once,
 * as the left fold {@code ((x[c+1] + x[c+2]) + ... + x[c+n-1]) + x[c]} (ranks mod n), on the way round, and then
 * only copied: every rank ends with the same bits. All-gather: at step s rank r sends chunk (r-s) mod n and receives
 * chunk (r-s-1) mod n in place. Every operation starts with a 32-byte header to the right neighbour (call number,
 * operation, dtype, count, root), so ranks that call different collectives fail with a message instead of garbage.
 *
 * <p>Transport. Between neighbours on one host (found at setup: the left one offers a file in {@code /dev/shm} and a
 * random token written in it; the right one maps it if it can read the token back) a message of at least
 * {@value #SHM_MIN} bytes moves through that file instead of through the socket: the sender copies up to
 * {@value #SLOTS} slots of {@value #SLOT} bytes into it and rings a one-byte doorbell per slot over the TCP connection;
 * the receiver adds (or copies) the slot straight from the mapping into its memory and answers with a one-byte ack on
 * the same connection's other direction, which frees the slot. Loopback TCP costs two kernel copies per byte plus
 * the TCP stack's work; this costs one user-space copy. The sockets still carry headers, small messages, doorbells
 * and acks, so timeouts and a dead peer (its socket closes) are detected as before. {@code JTUNE_RING_SHM=0} keeps
 * everything on TCP. The summation order does not depend on the transport.
 *
 * <p>Not thread-safe: one call at a time (the process group synchronizes).
 */
final class Ring implements AutoCloseable {
    /** Element types the ring can sum. Byte-moving operations take any element size. */
    enum Sum { F32, F64, I32, I64 }

    private static final int MAGIC = 0x6A74524E; // "jtRN"
    private static final int SCRATCH = 1 << 20;
    /** Transfers are cut into pieces a ByteBuffer can address. */
    private static final long PIECE = 1L << 30;
    /**
     * Shared-memory slot size and count per link (4 MB of /dev/shm per rank). Messages below SHM_MIN stay on TCP:
     * there the 4 MB socket buffers let a sender run ahead, while every slot costs a doorbell/ack round trip, which
     * measured no faster below 1 MB and slower when other jobs share the cores (bench/README.md).
     */
    static final int SLOT = 1 << 20;
    static final int SLOTS = 4;
    static final long SHM_MIN = 1 << 20;
    /** The mapped file: a 64-byte head holding the setup token, then the slots. */
    private static final int SHM_HEAD = 64;
    private static final int TOKEN = 16;
    private static final byte BELL = 0x42;
    private static final byte ACK = 0x41;

    private final int rank;
    private final int world;
    private final Duration timeout;
    private final SocketChannel right;
    private final SocketChannel left;
    private final Selector selector;
    private final SelectionKey rightKey;
    private final SelectionKey leftKey;
    private final Arena arena;
    /** Slots this rank writes for its right neighbour, and those it reads from its left one; null where TCP only. */
    private final MemorySegment shmOut;
    private final MemorySegment shmIn;
    /** The /dev/shm name this rank offered at setup (removed before connect returns), or null; for tests. */
    private final Path offered;
    private final ByteBuffer bells = ByteBuffer.allocateDirect(SLOTS);
    private final ByteBuffer acks = ByteBuffer.allocateDirect(SLOTS);
    private final MemorySegment scratch;
    private final MemorySegment headerOut;
    private final MemorySegment headerIn;
    private long calls;
    private DistException broken;
    private boolean closed;

    private Ring(int rank, int world, Duration timeout, SocketChannel right, SocketChannel left, Arena arena,
            MemorySegment shmOut, MemorySegment shmIn, Path offered) throws IOException {
        this.rank = rank;
        this.offered = offered;
        this.arena = arena;
        this.shmOut = shmOut;
        this.shmIn = shmIn;
        this.world = world;
        this.timeout = timeout;
        this.right = right;
        this.left = left;
        this.selector = Selector.open();
        right.configureBlocking(false);
        left.configureBlocking(false);
        this.rightKey = right.register(selector, 0);
        this.leftKey = left.register(selector, 0);
        this.scratch = arena.allocate(SCRATCH, 64);
        this.headerOut = arena.allocate(32, 8);
        this.headerIn = arena.allocate(32, 8);
    }

    int rank() {
        return rank;
    }

    int world() {
        return world;
    }

    /** Whether large messages to the right neighbour go through shared memory. */
    boolean sendsThroughSharedMemory() {
        return shmOut != null;
    }

    /** Whether large messages from the left neighbour come through shared memory. */
    boolean receivesThroughSharedMemory() {
        return shmIn != null;
    }

    Path offeredFile() {
        return offered;
    }

    private int leftRank() {
        return (rank + world - 1) % world;
    }

    private int rightRank() {
        return (rank + 1) % world;
    }

    // ---- setup ------------------------------------------------------------------------------------------------

    /**
     * Binds a server socket on the interface that reaches {@code masterAddr}, publishes it under
     * {@code prefix/ring/addr/RANK}, connects to the right neighbour and accepts the left one, all before
     * {@code timeout} passes. {@code world} must be at least 2. With {@code sharedMemory} a neighbour on the same
     * host is reached through {@code /dev/shm} for large messages (see the class comment); without, or where that
     * fails, through TCP only.
     */
    static Ring connect(int rank, int world, Store store, String prefix, String masterAddr, Duration timeout,
            boolean sharedMemory) {
        return connect(rank, world, store, prefix, masterAddr, timeout, timeout, sharedMemory);
    }

    /**
     * As above, with a setup timeout ({@code timeout}: every rank arrives and connects) apart from the one for a
     * collective that makes no progress: a test of the latter can keep it short without making setup on a busy
     * machine a race against it.
     */
    static Ring connect(int rank, int world, Store store, String prefix, String masterAddr, Duration timeout,
            Duration collectiveTimeout, boolean sharedMemory) {
        long deadline = System.nanoTime() + timeout.toNanos();
        InetAddress local = localAddressFor(masterAddr);
        ServerSocketChannel server = null;
        SocketChannel right = null;
        SocketChannel left = null;
        Arena arena = Arena.ofShared();
        ShmFile offer = null;
        try {
            server = ServerSocketChannel.open();
            server.bind(new InetSocketAddress(local, 0), 8);
            int port = ((InetSocketAddress) server.getLocalAddress()).getPort();
            store.set(addrKey(prefix, rank), (local.getHostAddress() + "|" + port).getBytes(StandardCharsets.UTF_8));

            int rightRank = (rank + 1) % world;
            int leftRank = (rank + world - 1) % world;
            byte[] addr;
            try {
                addr = store.get(addrKey(prefix, rightRank), remaining(deadline));
            } catch (DistException e) {
                throw new DistException("rank " + rightRank + " did not arrive within " + timeout + " (rank " + rank
                        + " waited for its address under store key " + addrKey(prefix, rightRank) + ")", e);
            }
            String[] hp = new String(addr, StandardCharsets.UTF_8).split("\\|");
            InetSocketAddress target = new InetSocketAddress(InetAddress.getByName(hp[0]), Integer.parseInt(hp[1]));
            right = connectWithRetry(target, deadline, rightRank, rank, timeout);
            offer = sharedMemory ? ShmFile.create(arena) : null;
            writeHello(right, rank, world, offer == null ? new byte[0] : offer.describe());

            // The server was bound before the address was published, so the left neighbour's connect completes
            // from the backlog even before this accept: no ordering between ranks is needed.
            server.configureBlocking(false);
            try (Selector accept = Selector.open()) {
                server.register(accept, SelectionKey.OP_ACCEPT);
                while (left == null) {
                    long ms = remaining(deadline).toMillis();
                    if (ms <= 0 || accept.select(ms) == 0 && System.nanoTime() >= deadline) {
                        throw new DistException("rank " + leftRank + " did not connect to rank " + rank + " within "
                                + timeout);
                    }
                    accept.selectedKeys().clear();
                    left = server.accept();
                }
            }
            configure(left);
            byte[] theirOffer = readHello(left, leftRank, rank, world, deadline, timeout);
            MemorySegment shmIn = sharedMemory ? ShmFile.open(theirOffer, arena) : null;
            // Every rank writes its answer before it waits for its right neighbour's, so no rank waits on another.
            writeFully(left, ByteBuffer.wrap(new byte[] {(byte) (shmIn != null ? 1 : 0)}));
            ByteBuffer answer = ByteBuffer.allocate(1);
            right.configureBlocking(false);
            readFully(right, answer, deadline, () -> "rank " + rightRank + " did not answer rank " + rank
                    + "'s greeting within " + timeout, () -> "rank " + rightRank + " closed its connection to rank "
                    + rank + " during setup");
            MemorySegment shmOut = offer != null && answer.get(0) == 1 ? offer.slots(arena) : null;
            return new Ring(rank, world, collectiveTimeout, right, left, arena, shmOut, shmIn,
                    offer == null ? null : offer.path());
        } catch (IOException e) {
            closeQuietly(right);
            closeQuietly(left);
            arena.close();
            throw new DistException("rank " + rank + ": ring setup failed: " + e, e);
        } catch (RuntimeException e) {
            closeQuietly(right);
            closeQuietly(left);
            arena.close();
            throw e;
        } finally {
            closeQuietly(server);
            if (offer != null) {
                offer.unlink(); // both sides have mapped it (or never will): the name is not needed any more
            }
        }
    }

    /** Whether {@code JTUNE_RING_SHM} leaves same-host shared memory on (anything but {@code 0}). */
    static boolean sharedMemoryFromEnv() {
        return !"0".equals(System.getenv("JTUNE_RING_SHM"));
    }

    /** The file a rank offers its right neighbour: slots behind a head with a random token. */
    private record ShmFile(Path path, byte[] token, MemorySegment mapping) {
        private static final Path DIR = Path.of("/dev/shm");
        private static final long SIZE = SHM_HEAD + (long) SLOTS * SLOT;

        /** A fresh mapped file, or null where there is no {@code /dev/shm} or it is full. */
        static ShmFile create(Arena arena) {
            if (!Files.isDirectory(DIR)) {
                return null;
            }
            Path p = null;
            try {
                p = Files.createTempFile(DIR, "jtune-ring-", ".shm"); // owner-only permissions
                MemorySegment m;
                try (FileChannel fc = FileChannel.open(p, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                    // Real writes make tmpfs allocate every page now: a full /dev/shm fails here with an
                    // IOException rather than with a SIGBUS on the first touch of a sparse mapping.
                    ByteBuffer zeros = ByteBuffer.allocateDirect(1 << 16);
                    for (long pos = 0; pos < SIZE; ) {
                        zeros.clear().limit((int) Math.min(zeros.capacity(), SIZE - pos));
                        pos += fc.write(zeros, pos);
                    }
                    m = fc.map(FileChannel.MapMode.READ_WRITE, 0, SIZE, arena);
                }
                byte[] token = new byte[TOKEN];
                new SecureRandom().nextBytes(token);
                MemorySegment.copy(token, 0, m, ValueLayout.JAVA_BYTE, 0, TOKEN);
                return new ShmFile(p, token, m);
            } catch (IOException | RuntimeException e) {
                if (p != null) {
                    new ShmFile(p, null, null).unlink();
                }
                return null; // TCP only
            }
        }

        byte[] describe() {
            byte[] name = path.toString().getBytes(StandardCharsets.UTF_8);
            byte[] d = new byte[name.length + TOKEN];
            System.arraycopy(token, 0, d, 0, TOKEN);
            System.arraycopy(name, 0, d, TOKEN, name.length);
            return d;
        }

        MemorySegment slots(Arena arena) {
            return plain(mapping, arena);
        }

        /**
         * The slots of a mapping as a plain native segment of the same arena. Why: the add and copy loops then see
         * one segment class on every path (the TCP scratch is native too); a mapped segment there made C2 deoptimize
         * and recompile {@code add} over and over (measured: a third of the CPU time in the compiler).
         */
        static MemorySegment plain(MemorySegment mapping, Arena arena) {
            return MemorySegment.ofAddress(mapping.address() + SHM_HEAD).reinterpret(SIZE - SHM_HEAD, arena, null);
        }

        /**
         * Maps the file the left neighbour offered, or returns null: no offer, or no such file here with that token
         * (the neighbour is on another host, or /dev/shm differs).
         */
        static MemorySegment open(byte[] offer, Arena arena) {
            if (offer.length <= TOKEN) {
                return null;
            }
            Path p = Path.of(new String(offer, TOKEN, offer.length - TOKEN, StandardCharsets.UTF_8)).normalize();
            if (!p.startsWith(DIR)) {
                return null;
            }
            try (FileChannel fc = FileChannel.open(p, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                if (fc.size() != SIZE) {
                    return null;
                }
                MemorySegment m = fc.map(FileChannel.MapMode.READ_WRITE, 0, SIZE, arena);
                for (int i = 0; i < TOKEN; i++) {
                    if (m.get(ValueLayout.JAVA_BYTE, i) != offer[i]) {
                        return null;
                    }
                }
                return plain(m, arena);
            } catch (IOException | RuntimeException e) {
                return null;
            }
        }

        void unlink() {
            try {
                Files.deleteIfExists(path);
            } catch (IOException e) {
                // a leftover name in /dev/shm is harmless; the mapping does not depend on it
            }
        }
    }

    static String addrKey(String prefix, int rank) {
        return prefix + "/ring/addr/" + rank;
    }

    /** The local address of the route to {@code masterAddr} (a UDP connect sends nothing). */
    static InetAddress localAddressFor(String masterAddr) {
        try (DatagramSocket probe = new DatagramSocket()) {
            probe.connect(InetAddress.getByName(masterAddr), 9);
            InetAddress a = probe.getLocalAddress();
            if (a != null && !a.isAnyLocalAddress()) {
                return a;
            }
        } catch (IOException | RuntimeException e) {
            // fall through: an unresolvable master is reported by the launcher; loopback serves a single host
        }
        return InetAddress.getLoopbackAddress();
    }

    private static SocketChannel connectWithRetry(InetSocketAddress target, long deadline, int peer, int rank,
            Duration timeout) throws IOException {
        IOException last = null;
        while (System.nanoTime() < deadline) {
            SocketChannel ch = SocketChannel.open();
            try {
                configure(ch);
                ch.socket().connect(target, (int) Math.max(1, Math.min(Integer.MAX_VALUE, remaining(deadline).toMillis())));
                return ch;
            } catch (IOException e) {
                closeQuietly(ch);
                last = e;
                sleep(20);
            }
        }
        throw new DistException("rank " + rank + " could not connect to rank " + peer + " at " + target + " within "
                + timeout + (last == null ? "" : ": " + last), last);
    }

    private static void configure(SocketChannel ch) throws IOException {
        ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
        ch.setOption(StandardSocketOptions.SO_SNDBUF, 4 << 20);
        ch.setOption(StandardSocketOptions.SO_RCVBUF, 4 << 20);
    }

    private static void writeHello(SocketChannel ch, int rank, int world, byte[] offer) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(16 + offer.length).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(MAGIC).putInt(rank).putInt(world).putInt(offer.length).put(offer);
        writeFully(ch, b.flip());
    }

    /** Writes all of {@code b} (a few bytes into an empty socket buffer: this does not wait on the peer). */
    private static void writeFully(SocketChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    /** Checks the left neighbour's greeting; returns its shared-memory offer (empty for none). */
    private static byte[] readHello(SocketChannel ch, int expectedRank, int rank, int world, long deadline,
            Duration timeout) throws IOException {
        ch.configureBlocking(false);
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        java.util.function.Supplier<String> late = () -> "rank " + expectedRank + " connected to rank " + rank
                + " but sent no greeting within " + timeout;
        java.util.function.Supplier<String> gone = () -> "rank " + expectedRank + " closed its connection to rank "
                + rank + " during setup";
        readFully(ch, b, deadline, late, gone);
        b.flip();
        int magic = b.getInt();
        int peer = b.getInt();
        int peerWorld = b.getInt();
        int offerLen = b.getInt();
        if (magic != MAGIC || peer != expectedRank || peerWorld != world || offerLen < 0 || offerLen > 4096) {
            throw new DistException("rank " + rank + " expected rank " + expectedRank + " of " + world
                    + " on its left, got " + (magic != MAGIC ? "a connection that is not a jtune ring" : "rank " + peer
                    + " of " + peerWorld) + " (two jobs on one store prefix?)");
        }
        ByteBuffer offer = ByteBuffer.allocate(offerLen);
        readFully(ch, offer, deadline, late, gone);
        return offer.array();
    }

    /** Fills {@code b} from a non-blocking channel before {@code deadline}. */
    private static void readFully(SocketChannel ch, ByteBuffer b, long deadline,
            java.util.function.Supplier<String> late, java.util.function.Supplier<String> gone) throws IOException {
        try (Selector s = Selector.open()) {
            ch.register(s, SelectionKey.OP_READ);
            while (b.hasRemaining()) {
                if (ch.read(b) < 0) {
                    throw new DistException(gone.get());
                }
                if (!b.hasRemaining()) {
                    break;
                }
                long ms = remaining(deadline).toMillis();
                if (ms <= 0) {
                    throw new DistException(late.get());
                }
                s.select(ms);
                s.selectedKeys().clear();
            }
        }
    }

    // ---- collectives on memory --------------------------------------------------------------------------------

    /** Sums {@code data} (count elements of {@code type}) over the ranks, in place. */
    void allReduce(MemorySegment data, long count, Sum type) {
        int esize = size(type);
        begin(Op.ALL_REDUCE, type.ordinal(), count, -1);
        try {
            reduceScatterPhase(data, balanced(count), esize, type);
            allGatherPhase(data, balanced(count), esize);
        } catch (RuntimeException e) {
            throw fail(e);
        }
    }

    /** {@code data} holds n blocks of {@code blockElems}; block r is this rank's own; fills the others. */
    void allGather(MemorySegment data, long blockElems, int esize) {
        begin(Op.ALL_GATHER, esize, blockElems, -1);
        try {
            allGatherPhase(data, equal(blockElems), esize);
        } catch (RuntimeException e) {
            throw fail(e);
        }
    }

    /** Leaves in block r of {@code data} (n blocks of {@code blockElems}) the sum over ranks; other blocks scratch. */
    void reduceScatter(MemorySegment data, long blockElems, Sum type) {
        begin(Op.REDUCE_SCATTER, type.ordinal(), blockElems, -1);
        try {
            reduceScatterPhase(data, equal(blockElems), size(type), type);
        } catch (RuntimeException e) {
            throw fail(e);
        }
    }

    /** Copies rank {@code root}'s {@code data} into every rank's, pipelined along the ring from the root. */
    void broadcast(MemorySegment data, int root) {
        begin(Op.BROADCAST, 0, data.byteSize(), root);
        try {
            MemorySegment none = MemorySegment.NULL;
            if (rank == root) {
                duplex(data, none, null, false);
            } else if (rightRank() == root) {
                duplex(none, data, null, false);
            } else {
                duplex(data, data, null, true);
            }
        } catch (RuntimeException e) {
            throw fail(e);
        }
    }

    /** Returns once every rank has called it: an all-reduce of one counter per chunk, checked. */
    void barrier() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ones = a.allocate(8L * world, 8);
            for (int i = 0; i < world; i++) {
                ones.setAtIndex(ValueLayout.JAVA_LONG, i, 1);
            }
            allReduce(ones, world, Sum.I64);
            for (int i = 0; i < world; i++) {
                long v = ones.getAtIndex(ValueLayout.JAVA_LONG, i);
                if (v != world) {
                    throw fail(new DistException("barrier counted " + v + " ranks, expected " + world));
                }
            }
        }
    }

    /** Chunk bounds (element offsets, n+1 of them) splitting {@code count} as evenly as possible. */
    private long[] balanced(long count) {
        long[] b = new long[world + 1];
        for (int c = 0; c <= world; c++) {
            b[c] = Math.multiplyExact(count, c) / world;
        }
        b[world] = count;
        return b;
    }

    private long[] equal(long block) {
        long[] b = new long[world + 1];
        for (int c = 0; c <= world; c++) {
            b[c] = block * c;
        }
        return b;
    }

    private void reduceScatterPhase(MemorySegment data, long[] bounds, int esize, Sum type) {
        for (int s = 0; s < world - 1; s++) {
            int send = Math.floorMod(rank - s - 1, world);
            int recv = Math.floorMod(rank - s - 2, world);
            duplex(chunk(data, bounds, send, esize), chunk(data, bounds, recv, esize), type, false);
        }
    }

    private void allGatherPhase(MemorySegment data, long[] bounds, int esize) {
        for (int s = 0; s < world - 1; s++) {
            int send = Math.floorMod(rank - s, world);
            int recv = Math.floorMod(rank - s - 1, world);
            duplex(chunk(data, bounds, send, esize), chunk(data, bounds, recv, esize), null, false);
        }
    }

    private static MemorySegment chunk(MemorySegment data, long[] bounds, int c, int esize) {
        long len = (bounds[c + 1] - bounds[c]) * esize;
        return len == 0 ? MemorySegment.NULL : data.asSlice(bounds[c] * esize, len);
    }

    // ---- the wire ---------------------------------------------------------------------------------------------

    private enum Op { ALL_REDUCE, ALL_GATHER, REDUCE_SCATTER, BROADCAST }

    private void begin(Op op, int type, long count, int root) {
        if (broken != null) {
            throw new DistException("rank " + rank + ": the process group failed earlier and cannot be used: "
                    + broken.getMessage(), broken);
        }
        long call = ++calls;
        headerOut.set(ValueLayout.JAVA_INT, 0, MAGIC);
        headerOut.set(ValueLayout.JAVA_INT, 4, op.ordinal());
        headerOut.set(ValueLayout.JAVA_LONG, 8, call);
        headerOut.set(ValueLayout.JAVA_LONG, 16, count);
        headerOut.set(ValueLayout.JAVA_INT, 24, type);
        headerOut.set(ValueLayout.JAVA_INT, 28, root);
        try {
            duplex(headerOut, headerIn, null, false);
        } catch (RuntimeException e) {
            throw fail(e);
        }
        if (headerIn.mismatch(headerOut) >= 0) {
            int magic = headerIn.get(ValueLayout.JAVA_INT, 0);
            String theirs = magic != MAGIC ? "garbage" : describe(Op.values()[headerIn.get(ValueLayout.JAVA_INT, 4)],
                    headerIn.get(ValueLayout.JAVA_LONG, 8), headerIn.get(ValueLayout.JAVA_LONG, 16),
                    headerIn.get(ValueLayout.JAVA_INT, 24), headerIn.get(ValueLayout.JAVA_INT, 28));
            throw fail(new DistException("collective mismatch: rank " + leftRank() + " is at " + theirs + ", rank "
                    + rank + " at " + describe(op, call, count, type, root)
                    + " (every rank must call the same collectives in the same order with the same shapes)"));
        }
    }

    private static String describe(Op op, long call, long count, int type, int root) {
        return "call #" + call + " " + op + "(count " + count + ", type " + type + (root >= 0 ? ", root " + root : "")
                + ")";
    }

    private DistException fail(RuntimeException e) {
        DistException d = e instanceof DistException de ? de : new DistException("rank " + rank + ": " + e, e);
        if (broken == null) {
            broken = d;
        }
        return d;
    }

    /**
     * Sends {@code out} to the right neighbour while receiving {@code in.byteSize()} bytes from the left one. With
     * {@code sum} the arriving elements are added into {@code in}, otherwise they are written into it. With
     * {@code forward} ({@code out} and {@code in} the same memory) only bytes already received are sent on.
     */
    private void duplex(MemorySegment out, MemorySegment in, Sum sum, boolean forward) {
        long outLen = out.byteSize();
        long inLen = in.byteSize();
        for (long off = 0; off < Math.max(outLen, inLen); off += PIECE) {
            MemorySegment o = off < outLen ? out.asSlice(off, Math.min(PIECE, outLen - off)) : MemorySegment.NULL;
            MemorySegment i = off < inLen ? in.asSlice(off, Math.min(PIECE, inLen - off)) : MemorySegment.NULL;
            piece(o, i, sum, forward);
        }
    }

    private void piece(MemorySegment out, MemorySegment in, Sum sum, boolean forward) {
        long outLen = out.byteSize();
        long inLen = in.byteSize();
        // Both ends of a link see the same message length, so they agree on its transport.
        boolean shmSend = shmOut != null && outLen >= SHM_MIN;
        boolean shmRecv = shmIn != null && inLen >= SHM_MIN;
        ByteBuffer send = shmSend || outLen == 0 ? ByteBuffer.allocate(0) : out.asByteBuffer();
        ByteBuffer recv = shmRecv ? null
                : sum != null ? scratch.asByteBuffer() : inLen == 0 ? ByteBuffer.allocate(0) : in.asByteBuffer();
        int esize = sum == null ? 1 : size(sum);
        long sent = 0; // bytes written to the socket, or published in slots
        long received = 0; // bytes stored (or added) into in
        int published = 0; // slots written, their doorbells not all rung yet (shared-memory send)
        int rung = 0; // slots whose doorbell went out and whose ack has not come back
        int acksOwed = 0; // slots consumed whose ack has not gone out (shared-memory receive)
        int nextOut = 0;
        int nextIn = 0;
        long idleSince = System.nanoTime();
        try {
            while ((shmSend ? sent < outLen || published + rung > 0 : sent < outLen) || received < inLen
                    || acksOwed > 0) {
                boolean progress = false;
                long sendable = forward ? received : outLen;
                if (shmSend) {
                    // fill free slots; a slot is only published whole (the receiver derives its length)
                    while (published + rung < SLOTS && sent < outLen) {
                        long len = Math.min(SLOT, outLen - sent);
                        if (sent + len > sendable) {
                            break;
                        }
                        MemorySegment.copy(out, sent, shmOut, (long) nextOut * SLOT, len);
                        nextOut = (nextOut + 1) % SLOTS;
                        sent += len;
                        published++;
                        progress = true;
                    }
                    if (published > 0) {
                        VarHandle.fullFence(); // the slot's bytes before the doorbell that announces them
                        bells.clear().limit(published);
                        int n = right.write(fill(bells, BELL));
                        published -= n;
                        rung += n;
                        progress |= n > 0;
                    }
                    if (rung > 0) {
                        acks.clear().limit(rung);
                        int n = right.read(acks);
                        if (n < 0) {
                            throw closedMidCollective(rightRank());
                        }
                        check(acks, n, ACK);
                        rung -= n;
                        progress |= n > 0;
                    }
                } else {
                    if (forward) {
                        send.limit((int) received);
                    }
                    if (send.hasRemaining()) {
                        int n = right.write(send);
                        sent = send.position();
                        progress = n > 0;
                    }
                }
                if (received < inLen && shmRecv) {
                    long slotsLeft = (inLen - received + SLOT - 1) / SLOT;
                    bells.clear().limit((int) Math.min(SLOTS, slotsLeft));
                    int n = left.read(bells);
                    if (n < 0) {
                        throw closedMidCollective(leftRank());
                    }
                    check(bells, n, BELL);
                    if (n > 0) {
                        VarHandle.fullFence(); // the doorbell before the slot's bytes
                        progress = true;
                    }
                    for (int k = 0; k < n; k++) {
                        int len = (int) Math.min(SLOT, inLen - received);
                        MemorySegment slot = shmIn.asSlice((long) nextIn * SLOT, len);
                        if (sum != null) {
                            add(in, received, slot, len, sum);
                        } else {
                            MemorySegment.copy(slot, 0, in, received, len);
                        }
                        nextIn = (nextIn + 1) % SLOTS;
                        received += len;
                        acksOwed++;
                        if (k + 1 < n) {
                            VarHandle.fullFence();
                            acks.clear().limit(acksOwed);
                            acksOwed -= left.write(fill(acks, ACK));
                        }
                    }
                } else if (received < inLen) {
                    if (sum != null) {
                        recv.limit((int) Math.min(recv.capacity(), inLen - received));
                    }
                    int n = left.read(recv);
                    if (n < 0) {
                        throw closedMidCollective(leftRank());
                    }
                    if (n > 0) {
                        progress = true;
                        if (sum == null) {
                            received = recv.position();
                        } else {
                            int whole = recv.position() / esize * esize;
                            add(in, received, scratch, whole, sum);
                            received += whole;
                            int rest = recv.position() - whole;
                            if (rest > 0) {
                                MemorySegment.copy(scratch, whole, scratch, 0, rest);
                            }
                            recv.clear().position(rest);
                        }
                    }
                }
                if (acksOwed > 0) {
                    VarHandle.fullFence(); // done reading the slots before the ack lets the sender overwrite them
                    acks.clear().limit(acksOwed);
                    int n = left.write(fill(acks, ACK));
                    acksOwed -= n;
                    progress |= n > 0;
                }
                if (progress) {
                    idleSince = System.nanoTime();
                    continue;
                }
                long waitMs = timeout.toMillis() - (System.nanoTime() - idleSince) / 1_000_000;
                if (waitMs <= 0) {
                    String who = received < inLen ? "rank " + leftRank() + " sent nothing to rank " + rank
                            : "rank " + rightRank() + " accepted nothing from rank " + rank;
                    throw new DistException(who + " for " + timeout + " in the middle of a collective (is it stuck, or"
                            + " calling a different collective?)");
                }
                boolean wantWrite = shmSend ? published > 0 : send.hasRemaining();
                rightKey.interestOps((wantWrite ? SelectionKey.OP_WRITE : 0) | (rung > 0 ? SelectionKey.OP_READ : 0));
                leftKey.interestOps((received < inLen ? SelectionKey.OP_READ : 0)
                        | (acksOwed > 0 ? SelectionKey.OP_WRITE : 0));
                selector.select(waitMs);
                selector.selectedKeys().clear();
            }
        } catch (IOException e) {
            throw new DistException("rank " + rank + ": connection to rank " + leftRank() + "/" + rightRank()
                    + " failed in the middle of a collective (did a peer exit?): " + e, e);
        }
    }

    private DistException closedMidCollective(int peer) {
        return new DistException("rank " + peer + " closed its connection to rank " + rank
                + " in the middle of a collective (did it exit or fail?)");
    }

    /** Sets every byte up to {@code b}'s limit to {@code value}; returns {@code b} at position 0. */
    private static ByteBuffer fill(ByteBuffer b, byte value) {
        for (int i = 0; i < b.limit(); i++) {
            b.put(i, value);
        }
        return b;
    }

    /** The {@code n} bytes just read into {@code b} must all be {@code value}: else the two ends disagree. */
    private void check(ByteBuffer b, int n, byte value) {
        for (int i = b.position() - Math.max(n, 0); i < b.position(); i++) {
            if (b.get(i) != value) {
                throw new DistException("rank " + rank + ": shared-memory protocol out of step with a neighbour (got byte "
                        + b.get(i) + " where a " + (value == BELL ? "doorbell" : "ack") + " was due)");
            }
        }
    }

    /**
     * {@code dst[off..] += src[0..bytes)}: the one place where the ring adds. One small method per type, so that the
     * JIT's profile of one type's loop is not polluted by another's (the barrier sums int64 between fp32 calls).
     */
    private static void add(MemorySegment dst, long off, MemorySegment src, int bytes, Sum type) {
        switch (type) {
            case F32 -> addF32(dst, off, src, bytes);
            case F64 -> addF64(dst, off, src, bytes);
            case I32 -> addI32(dst, off, src, bytes);
            case I64 -> addI64(dst, off, src, bytes);
        }
    }

    private static void addF32(MemorySegment dst, long off, MemorySegment src, int bytes) {
        for (int i = 0; i < bytes; i += 4) {
            dst.set(ValueLayout.JAVA_FLOAT_UNALIGNED, off + i,
                    dst.get(ValueLayout.JAVA_FLOAT_UNALIGNED, off + i) + src.get(ValueLayout.JAVA_FLOAT_UNALIGNED, i));
        }
    }

    private static void addF64(MemorySegment dst, long off, MemorySegment src, int bytes) {
        for (int i = 0; i < bytes; i += 8) {
            dst.set(ValueLayout.JAVA_DOUBLE_UNALIGNED, off + i,
                    dst.get(ValueLayout.JAVA_DOUBLE_UNALIGNED, off + i) + src.get(ValueLayout.JAVA_DOUBLE_UNALIGNED, i));
        }
    }

    private static void addI32(MemorySegment dst, long off, MemorySegment src, int bytes) {
        for (int i = 0; i < bytes; i += 4) {
            dst.set(ValueLayout.JAVA_INT_UNALIGNED, off + i,
                    dst.get(ValueLayout.JAVA_INT_UNALIGNED, off + i) + src.get(ValueLayout.JAVA_INT_UNALIGNED, i));
        }
    }

    private static void addI64(MemorySegment dst, long off, MemorySegment src, int bytes) {
        for (int i = 0; i < bytes; i += 8) {
            dst.set(ValueLayout.JAVA_LONG_UNALIGNED, off + i,
                    dst.get(ValueLayout.JAVA_LONG_UNALIGNED, off + i) + src.get(ValueLayout.JAVA_LONG_UNALIGNED, i));
        }
    }

    static int size(Sum type) {
        return switch (type) {
            case F32, I32 -> 4;
            case F64, I64 -> 8;
        };
    }

    private static Duration remaining(long deadline) {
        return Duration.ofNanos(Math.max(0, deadline - System.nanoTime()));
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new DistException("interrupted while connecting the ring", e);
        }
    }

    private static void closeQuietly(AutoCloseable c) {
        if (c != null) {
            try {
                c.close();
            } catch (Exception ignored) {
                // closing on a failure path; the first error is the one reported
            }
        }
    }

    /** Closes the connections; idempotent (a failed rank closes, then its try-with-resources closes again). */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (broken == null) {
            broken = new DistException("rank " + rank + ": the process group was closed");
        }
        closeQuietly(selector);
        closeQuietly(right);
        closeQuietly(left);
        arena.close();
    }
}
