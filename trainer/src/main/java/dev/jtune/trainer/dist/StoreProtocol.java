package dev.jtune.trainer.dist;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * The wire format between {@link TcpStore} and {@link TcpStoreServer}: a request is an op byte, the key
 * (int length + UTF-8) and the op's argument; a reply is a status byte and the result. Every length is an int
 * prefix, every number big-endian ({@link DataOutputStream}).
 *
 * <pre>
 * SET key value(int len + bytes)  -> OK
 * GET key timeoutMillis(long)     -> OK value(int len + bytes) | TIMEOUT
 * ADD key delta(long)             -> OK newValue(long)
 * </pre>
 */
final class StoreProtocol {
    static final byte SET = 1;
    static final byte GET = 2;
    static final byte ADD = 3;

    static final byte OK = 0;
    static final byte TIMEOUT = 1;
    static final byte ERROR = 2;

    /** Keys and values above this are refused: a corrupt length must not allocate gigabytes. */
    static final int MAX_BYTES = 1 << 30;

    private StoreProtocol() {}

    static void writeBytes(DataOutputStream out, byte[] b) throws IOException {
        out.writeInt(b.length);
        out.write(b);
    }

    static byte[] readBytes(DataInputStream in) throws IOException {
        int n = in.readInt();
        if (n < 0 || n > MAX_BYTES) {
            throw new IOException("bad length " + n + " in the store protocol");
        }
        byte[] b = new byte[n];
        in.readFully(b);
        return b;
    }

    static void writeKey(DataOutputStream out, String key) throws IOException {
        writeBytes(out, key.getBytes(StandardCharsets.UTF_8));
    }

    static String readKey(DataInputStream in) throws IOException {
        return new String(readBytes(in), StandardCharsets.UTF_8);
    }
}
