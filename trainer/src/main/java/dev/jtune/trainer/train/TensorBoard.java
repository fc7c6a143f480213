package dev.jtune.trainer.train;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import java.util.zip.CRC32C;

/**
 * TensorBoard event files as transformers' {@code TensorBoardCallback} writes them through PyTorch's
 * {@code SummaryWriter} ({@code use_tensorboard: true}): a folder {@code output_dir/runs/<Mon><dd>_<HH>-<MM>-<SS>_<host>}
 * ({@code default_logdir}) holding {@code events.out.tfevents.<seconds>.<host>.<pid>.0}, a TFRecord file of
 * {@code tensorflow.Event} protocol buffers: first {@code file_version: "brain.Event:2"}, then one event per logged
 * value with a scalar summary ({@code simple_value}), tagged as {@code rewrite_logs} does ({@code eval_x} as
 * {@code eval/x}, everything else as {@code train/x}) at the global step.
 *
 * <p>The protocol buffers are written by hand (five fields of two messages; no dependency):
 * {@code Event{double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5}},
 * {@code Summary{repeated Value value = 1}}, {@code Value{string tag = 1; float simple_value = 2}}. Each record is
 * framed as TFRecord: length (uint64 LE), masked CRC32C of the length, the bytes, masked CRC32C of the bytes.
 */
final class TensorBoard implements AutoCloseable {
    private static final DateTimeFormatter RUN_TIME = DateTimeFormatter.ofPattern("MMMdd_HH-mm-ss", Locale.ROOT);

    private final Path file;
    private final OutputStream out;

    private TensorBoard(Path file) throws IOException {
        this.file = file;
        this.out = Files.newOutputStream(file);
        write(event(System.currentTimeMillis() / 1000.0, 0, "brain.Event:2", null, 0f));
    }

    /** A new run folder under {@code outputDir/runs} with its event file, as SummaryWriter names them. */
    static TensorBoard open(Path outputDir) {
        String host = hostname();
        Path dir = outputDir.resolve("runs").resolve(LocalDateTime.now().format(RUN_TIME) + "_" + host);
        try {
            Files.createDirectories(dir);
            long seconds = System.currentTimeMillis() / 1000;
            return new TensorBoard(dir.resolve(String.format(Locale.ROOT, "events.out.tfevents.%010d.%s.%d.0", seconds,
                    host, ProcessHandle.current().pid())));
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": cannot write TensorBoard events: " + e.getMessage(), e);
        }
    }

    Path file() {
        return file;
    }

    /** transformers' {@code rewrite_logs}: the tag of a logged key. */
    static String tag(String key) {
        if (key.startsWith("eval_")) return "eval/" + key.substring(5);
        if (key.startsWith("test_")) return "test/" + key.substring(5);
        return "train/" + key;
    }

    /** One scalar at {@code step}, flushed (as the callback flushes after each log). */
    void scalar(String key, double value, long step) {
        try {
            write(event(System.currentTimeMillis() / 1000.0, step, null, tag(key), (float) value));
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        try {
            out.close();
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": " + e.getMessage(), e);
        }
    }

    // --- protocol buffers and TFRecord framing

    static byte[] event(double wallTime, long step, String fileVersion, String tag, float value) {
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        e.write(0x09); // field 1, 64-bit
        e.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putDouble(wallTime).array());
        if (step != 0) {
            e.write(0x10); // field 2, varint
            varint(e, step);
        }
        if (fileVersion != null) {
            bytesField(e, 0x1a, fileVersion.getBytes(StandardCharsets.UTF_8)); // field 3
        }
        if (tag != null) {
            ByteArrayOutputStream v = new ByteArrayOutputStream();
            bytesField(v, 0x0a, tag.getBytes(StandardCharsets.UTF_8)); // Value.tag, field 1
            v.write(0x15); // Value.simple_value, field 2, 32-bit
            v.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(value).array());
            ByteArrayOutputStream summary = new ByteArrayOutputStream();
            bytesField(summary, 0x0a, v.toByteArray()); // Summary.value, field 1
            bytesField(e, 0x2a, summary.toByteArray()); // Event.summary, field 5
        }
        return e.toByteArray();
    }

    private static void bytesField(ByteArrayOutputStream out, int key, byte[] bytes) {
        out.write(key);
        varint(out, bytes.length);
        out.writeBytes(bytes);
    }

    private static void varint(ByteArrayOutputStream out, long v) {
        while ((v & ~0x7FL) != 0) {
            out.write((int) ((v & 0x7F) | 0x80));
            v >>>= 7;
        }
        out.write((int) v);
    }

    /** TFRecord's masked CRC32C: {@code ((crc >>> 15) | (crc << 17)) + 0xa282ead8}, as a 32-bit value. */
    static int maskedCrc(byte[] bytes) {
        CRC32C crc = new CRC32C();
        crc.update(bytes);
        int c = (int) crc.getValue();
        return ((c >>> 15) | (c << 17)) + 0xa282ead8;
    }

    private void write(byte[] record) throws IOException {
        byte[] length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(record.length).array();
        ByteBuffer frame = ByteBuffer.allocate(8 + 4 + record.length + 4).order(ByteOrder.LITTLE_ENDIAN);
        frame.put(length).putInt(maskedCrc(length)).put(record).putInt(maskedCrc(record));
        out.write(frame.array());
    }

    /** What Python's socket.gethostname() gives: the kernel's host name (no DNS lookup), else Java's. */
    private static String hostname() {
        try {
            String name = Files.readString(Path.of("/proc/sys/kernel/hostname")).strip();
            if (!name.isEmpty()) return name;
        } catch (IOException | RuntimeException e) {
            // not Linux: ask Java
        }
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "localhost";
        }
    }
}
