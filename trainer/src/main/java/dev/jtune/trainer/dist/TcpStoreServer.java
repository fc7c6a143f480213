package dev.jtune.trainer.dist;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The server side of {@link TcpStore} (torch's {@code TCPStore} with {@code is_master=True}): holds the keys in
 * memory and answers any number of clients, one virtual thread each. A {@code get} of a missing key waits here,
 * on the server, until some client sets it or the caller's timeout passes. The master node's launcher serves
 * it; workers reach it at {@code MASTER_ADDR:MASTER_PORT}.
 */
public final class TcpStoreServer implements AutoCloseable {
    private final ServerSocket socket;
    private final String host;
    private final Map<String, byte[]> values = new HashMap<>();
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private final Set<Socket> clients = ConcurrentHashMap.newKeySet();
    private final Thread acceptor;
    private volatile boolean closed;
    /** Gets blocked on a key that is not set yet (guarded by {@link #lock}). */
    private int waitingGets;

    private TcpStoreServer(ServerSocket socket, String host) {
        this.socket = socket;
        this.host = host;
        this.acceptor = Thread.ofPlatform().daemon().name("tcp-store-accept-" + socket.getLocalPort()).start(this::accept);
    }

    /**
     * Listens on {@code port} (0: a free one) of every interface, so that other nodes reach it.
     *
     * @param host the name other nodes use for this machine, only for messages
     * @throws DistException "port P is taken on HOST: choose another --master-port" when the port is in use
     */
    public static TcpStoreServer start(String host, int port) {
        return start(host, new InetSocketAddress(port));
    }

    /** Listens on {@code bind} (an interface and port); see {@link #start(String, int)}. */
    public static TcpStoreServer start(String host, InetSocketAddress bind) {
        ServerSocket s = null;
        try {
            s = new ServerSocket();
            s.setReuseAddress(true); // a restarted master may rebind while old connections sit in TIME_WAIT
            s.bind(bind, 1024);
            return new TcpStoreServer(s, host);
        } catch (BindException e) {
            closeQuietly(s);
            throw new DistException("port " + bind.getPort() + " is taken on " + host
                    + ": choose another --master-port (or set MASTER_PORT)", e);
        } catch (IOException e) {
            closeQuietly(s);
            throw new DistException("cannot serve the store on " + host + ":" + bind.getPort() + ": " + e.getMessage(), e);
        }
    }

    /** The port it listens on (the chosen one when started with port 0). */
    public int port() {
        return socket.getLocalPort();
    }

    /** The host name given at start. */
    public String host() {
        return host;
    }

    private void accept() {
        while (!closed) {
            try {
                Socket c = socket.accept();
                c.setTcpNoDelay(true);
                clients.add(c);
                Thread.ofVirtual().name("tcp-store-client").start(() -> serve(c));
            } catch (IOException e) {
                if (closed) {
                    return;
                }
            }
        }
    }

    private void serve(Socket c) {
        try (c;
                var in = new DataInputStream(new BufferedInputStream(c.getInputStream()));
                var out = new DataOutputStream(new BufferedOutputStream(c.getOutputStream()))) {
            while (!closed) {
                byte op;
                try {
                    op = in.readByte();
                } catch (EOFException e) {
                    return; // the client closed the connection
                }
                String key = StoreProtocol.readKey(in);
                switch (op) {
                    case StoreProtocol.SET -> {
                        byte[] value = StoreProtocol.readBytes(in);
                        set(key, value);
                        out.writeByte(StoreProtocol.OK);
                    }
                    case StoreProtocol.GET -> {
                        long timeoutMillis = in.readLong();
                        byte[] value = await(key, timeoutMillis);
                        if (value == null) {
                            out.writeByte(StoreProtocol.TIMEOUT);
                        } else {
                            out.writeByte(StoreProtocol.OK);
                            StoreProtocol.writeBytes(out, value);
                        }
                    }
                    case StoreProtocol.ADD -> {
                        long delta = in.readLong();
                        out.writeByte(StoreProtocol.OK);
                        out.writeLong(add(key, delta));
                    }
                    default -> {
                        out.writeByte(StoreProtocol.ERROR);
                        StoreProtocol.writeKey(out, "unknown store operation " + op);
                        out.flush();
                        return;
                    }
                }
                out.flush();
            }
        } catch (IOException | InterruptedException e) {
            // the client went away or we are closing: nothing to answer
        } finally {
            clients.remove(c);
        }
    }

    private void set(String key, byte[] value) {
        lock.lock();
        try {
            values.put(key, value);
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /** The value, or null when the timeout passes (or the server closes) first. */
    private byte[] await(String key, long timeoutMillis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(Math.max(0, timeoutMillis));
        lock.lock();
        try {
            while (true) {
                byte[] v = values.get(key);
                if (v != null || closed) {
                    return v;
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return null;
                }
                waitingGets++;
                try {
                    changed.awaitNanos(left);
                } finally {
                    waitingGets--;
                }
            }
        } finally {
            lock.unlock();
        }
    }

    /** How many gets are blocked on a key not set yet: lets tests act once a get is provably waiting. */
    int waitingGets() {
        lock.lock();
        try {
            return waitingGets;
        } finally {
            lock.unlock();
        }
    }

    /** Counters are stored as decimal text, as torch's store does, so a {@code get} reads them too. */
    private long add(String key, long delta) {
        lock.lock();
        try {
            byte[] old = values.get(key);
            long v = delta;
            if (old != null) {
                try {
                    v = Math.addExact(Long.parseLong(new String(old, StandardCharsets.UTF_8)), delta);
                } catch (NumberFormatException e) {
                    v = delta; // a non-counter value is replaced, like torch's store
                }
            }
            values.put(key, Long.toString(v).getBytes(StandardCharsets.UTF_8));
            changed.signalAll();
            return v;
        } finally {
            lock.unlock();
        }
    }

    /** Stops listening and drops every client (their pending calls fail with a {@link DistException}). */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        closeQuietly(socket);
        for (Socket c : clients) {
            closeQuietly(c);
        }
        lock.lock();
        try {
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        try {
            acceptor.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void closeQuietly(AutoCloseable c) {
        if (c != null) {
            try {
                c.close();
            } catch (Exception e) {
                // closing anyway
            }
        }
    }
}
