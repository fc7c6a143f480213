package dev.jtune.trainer.dist;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * A client of a {@link TcpStoreServer} (torch's {@code TCPStore} with {@code is_master=False}). Safe for
 * concurrent use: each call borrows a connection of its own (opening one when all are busy), so a thread
 * waiting in {@link #get} never holds up another thread's {@link #set}.
 *
 * <p>Under {@code ./launch.sh --nproc-per-node N}, the launcher serves the store at
 * {@code MASTER_ADDR:MASTER_PORT} and sets {@code JTUNE_AGENT_STORE=1}: workers connect as clients
 * and put their keys under {@code attempt/$JTUNE_RESTART_COUNT/} so that a restarted group starts clean.
 */
public final class TcpStore implements Store {
    /** Bounds a single connection attempt; {@link #connect} retries until its own deadline. */
    private static final int CONNECT_ATTEMPT_MILLIS = 2000;

    private final String host;
    private final int port;
    private final Deque<Connection> idle = new ArrayDeque<>();
    private volatile boolean closed;

    private TcpStore(String host, int port, Connection first) {
        this.host = host;
        this.port = port;
        idle.push(first);
    }

    /**
     * Connects to the store at {@code host:port}, retrying (the master may start later than this node)
     * until {@code timeout} has passed.
     *
     * @throws DistException "no store at HOST:PORT after 60 s" when nothing answers in time
     */
    public static TcpStore connect(String host, int port, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        IOException last = null;
        while (true) {
            try {
                return new TcpStore(host, port, open(host, port));
            } catch (IOException e) {
                last = e;
            }
            if (System.nanoTime() - deadline >= 0) {
                throw new DistException("no store at " + host + ":" + port + " after " + seconds(timeout)
                        + " (is the master node's launcher running, and is MASTER_ADDR/--master-addr reachable? "
                        + "last error: " + last.getMessage() + ")", last);
            }
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new DistException("interrupted while connecting to the store at " + host + ":" + port, e);
            }
        }
    }

    @Override
    public void set(String key, byte[] value) {
        call(key, c -> {
            c.out.writeByte(StoreProtocol.SET);
            StoreProtocol.writeKey(c.out, key);
            StoreProtocol.writeBytes(c.out, value);
            c.out.flush();
            status(c, key);
            return null;
        }, 0);
    }

    @Override
    public byte[] get(String key, Duration timeout) {
        long millis = Math.max(0, timeout.toMillis());
        byte[] value = call(key, c -> {
            c.out.writeByte(StoreProtocol.GET);
            StoreProtocol.writeKey(c.out, key);
            c.out.writeLong(millis);
            c.out.flush();
            byte s = c.in.readByte();
            if (s == StoreProtocol.TIMEOUT) {
                return null;
            }
            if (s != StoreProtocol.OK) {
                throw new IOException("store answered status " + s);
            }
            return StoreProtocol.readBytes(c.in);
        }, millis);
        if (value == null) {
            throw new DistException("store key '" + key + "' was not set within " + seconds(timeout)
                    + " (store at " + host + ":" + port + ")");
        }
        return value;
    }

    @Override
    public long add(String key, long delta) {
        return call(key, c -> {
            c.out.writeByte(StoreProtocol.ADD);
            StoreProtocol.writeKey(c.out, key);
            c.out.writeLong(delta);
            c.out.flush();
            status(c, key);
            return c.in.readLong();
        }, 0);
    }

    /** Where the store is, as {@code host:port}. */
    public String address() {
        return host + ":" + port;
    }

    @Override
    public void close() {
        closed = true;
        synchronized (idle) {
            for (Connection c : idle) {
                c.close();
            }
            idle.clear();
        }
    }

    private interface Exchange<T> {
        T run(Connection c) throws IOException;
    }

    /** Runs one request on a borrowed connection; a broken connection is dropped, not returned. */
    private <T> T call(String key, Exchange<T> exchange, long waitMillis) {
        if (closed) {
            throw new DistException("the store client for " + address() + " is closed");
        }
        Connection c;
        synchronized (idle) {
            c = idle.poll();
        }
        try {
            if (c == null) {
                c = open(host, port);
            }
            // The server answers a get by its timeout; the socket only guards against a vanished server.
            c.socket.setSoTimeout(waitMillis > 0 ? (int) Math.min(Integer.MAX_VALUE, waitMillis + 30_000) : 60_000);
            T result = exchange.run(c);
            synchronized (idle) {
                if (closed) {
                    c.close();
                } else {
                    idle.push(c);
                }
            }
            return result;
        } catch (IOException e) {
            if (c != null) {
                c.close();
            }
            throw new DistException("lost the store at " + address() + " (key '" + key + "'): " + e.getMessage()
                    + " — did the master node's launcher exit?", e);
        }
    }

    private static void status(Connection c, String key) throws IOException {
        byte s = c.in.readByte();
        if (s != StoreProtocol.OK) {
            throw new IOException("store answered status " + s + " for key '" + key + "'");
        }
    }

    private static Connection open(String host, int port) throws IOException {
        Socket s = new Socket();
        try {
            s.setTcpNoDelay(true);
            s.connect(new InetSocketAddress(host, port), CONNECT_ATTEMPT_MILLIS);
            return new Connection(s, new DataInputStream(new BufferedInputStream(s.getInputStream())),
                    new DataOutputStream(new BufferedOutputStream(s.getOutputStream())));
        } catch (IOException e) {
            s.close();
            throw e;
        }
    }

    static String seconds(Duration d) {
        long ms = d.toMillis();
        return ms % 1000 == 0 ? ms / 1000 + " s" : String.format(java.util.Locale.ROOT, "%.1f s", ms / 1000.0);
    }

    private record Connection(Socket socket, DataInputStream in, DataOutputStream out) {
        void close() {
            try {
                socket.close();
            } catch (IOException e) {
                // dropping it anyway
            }
        }
    }
}
