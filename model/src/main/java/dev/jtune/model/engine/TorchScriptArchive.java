package dev.jtune.model.engine;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Packs TorchScript source for one module class into the zip archive that libtorch's
 * {@code torch::jit::load} accepts, so kernels can be shipped as plain source and compiled at load time.
 *
 * <p>The archive holds {@code version}, an empty {@code constants.pkl}, {@code data.pkl} (a pickle of
 * one object of class {@code __torch__.<className>} whose only attribute is {@code training}) and
 * {@code code/__torch__.py}, the source itself. Entries are stored uncompressed, as torch writes them.
 */
public final class TorchScriptArchive {
    /** Serialization format version that libtorch 2.x reads. */
    private static final String FORMAT_VERSION = "10\n";

    private TorchScriptArchive() {}

    /**
     * Builds the archive.
     *
     * @param className the TorchScript class defined in {@code source} (e.g. {@code Ops})
     * @param source TorchScript source of {@code code/__torch__.py}; it must declare {@code training : bool}
     * @return the archive bytes
     */
    public static byte[] pack(String className, String source) {
        if (!className.matches("[A-Za-z_][A-Za-z0-9_]*")) {
            throw new IllegalArgumentException("not a TorchScript class name: " + className);
        }
        var bytes = new ByteArrayOutputStream();
        try (var zip = new ZipOutputStream(bytes)) {
            put(zip, "archive/version", FORMAT_VERSION.getBytes(StandardCharsets.US_ASCII));
            put(zip, "archive/constants.pkl", new byte[] {(byte) 0x80, 2, ')', '.'});
            put(zip, "archive/data.pkl", modulePickle(className));
            put(zip, "archive/code/__torch__.py", source.getBytes(StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    /** Pickle (protocol 2) of {@code __torch__.<className>()} with state {@code {"training": True}}. */
    static byte[] modulePickle(String className) {
        var p = new ByteArrayOutputStream();
        p.write(0x80); // PROTO
        p.write(2);
        p.writeBytes(("c__torch__\n" + className + "\n").getBytes(StandardCharsets.US_ASCII)); // GLOBAL
        p.write(')'); // EMPTY_TUPLE
        p.write(0x81); // NEWOBJ
        p.write('}'); // EMPTY_DICT
        p.write('('); // MARK
        byte[] key = "training".getBytes(StandardCharsets.UTF_8);
        p.write('X'); // BINUNICODE, 4-byte little-endian length
        p.write(key.length);
        p.write(0);
        p.write(0);
        p.write(0);
        p.writeBytes(key);
        p.write(0x88); // NEWTRUE
        p.write('u'); // SETITEMS
        p.write('b'); // BUILD
        p.write('.'); // STOP
        return p.toByteArray();
    }

    private static void put(ZipOutputStream zip, String name, byte[] data) throws IOException {
        var entry = new ZipEntry(name);
        entry.setMethod(ZipEntry.STORED);
        entry.setSize(data.length);
        entry.setCompressedSize(data.length);
        var crc = new CRC32();
        crc.update(data);
        entry.setCrc(crc.getValue());
        zip.putNextEntry(entry);
        zip.write(data);
        zip.closeEntry();
    }
}
