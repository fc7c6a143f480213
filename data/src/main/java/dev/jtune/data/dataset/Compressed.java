package dev.jtune.data.dataset;

import com.github.luben.zstd.ZstdInputStream;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.zip.GZIPInputStream;
import org.apache.commons.compress.compressors.bzip2.BZip2CompressorInputStream;
import org.tukaani.xz.XZInputStream;

/**
 * Data files compressed as a whole, read as Hugging Face datasets reads them: the format is told by the file's
 * first bytes ({@code datasets/utils/extract.py}'s magic numbers: gzip {@code 1f 8b}, bzip2 {@code BZh}, xz
 * {@code fd 37 7a 58 5a 00}, zstd {@code 28 b5 2f fd}), and the name with its compression suffix
 * ({@code .gz}, {@code .bz2}, {@code .xz}, {@code .zst}) removed tells JSON from JSON lines. Concatenated
 * members/streams/frames are all read, as Python's gzip, bz2, lzma and zstandard do. Archives (zip, 7z, rar)
 * and lz4 are refused with the reason.
 */
final class Compressed {
    /** The compression suffixes whose removal gives the data file's own name. */
    static final List<String> SUFFIXES = List.of(".gz", ".bz2", ".xz", ".zst", ".zstd");

    private enum Format {
        GZIP(new byte[] {0x1f, (byte) 0x8b}),
        BZIP2(new byte[] {'B', 'Z', 'h'}),
        XZ(new byte[] {(byte) 0xfd, '7', 'z', 'X', 'Z', 0}),
        ZSTD(new byte[] {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd}),
        ZIP(new byte[] {'P', 'K', 3, 4}),
        SEVEN_ZIP(new byte[] {'7', 'z', (byte) 0xbc, (byte) 0xaf, 0x27, 0x1c}),
        RAR(new byte[] {'R', 'a', 'r', '!', 0x1a, 7}),
        LZ4(new byte[] {4, 0x22, 0x4d, 0x18});

        final byte[] magic;

        Format(byte[] magic) {
            this.magic = magic;
        }
    }

    private Compressed() {}

    /** {@code name} without a compression suffix: {@code a.jsonl.zst} gives {@code a.jsonl}. */
    static String plainName(String name) {
        for (String suffix : SUFFIXES) {
            if (name.endsWith(suffix) && name.length() > suffix.length()) {
                return name.substring(0, name.length() - suffix.length());
            }
        }
        return name;
    }

    /**
     * The file's bytes, decompressed when its first bytes say it is compressed.
     *
     * @throws DatasetException for an archive or lz4, naming the file
     */
    static InputStream open(Path file) throws IOException {
        BufferedInputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
        try {
            in.mark(8);
            byte[] head = in.readNBytes(8);
            in.reset();
            Format format = Arrays.stream(Format.values()).filter(f -> startsWith(head, f.magic)).findFirst()
                    .orElse(null);
            if (format == null) return in;
            return switch (format) {
                case GZIP -> new BufferedInputStream(new GZIPInputStream(in, 1 << 16), 1 << 16);
                case BZIP2 -> new BufferedInputStream(new BZip2CompressorInputStream(in, true), 1 << 16);
                case XZ -> new BufferedInputStream(new XZInputStream(in), 1 << 16);
                case ZSTD -> new BufferedInputStream(new ZstdInputStream(in), 1 << 16);
                case ZIP, SEVEN_ZIP, RAR, LZ4 -> throw new DatasetException(file, 0, "a " + format.name().toLowerCase()
                        .replace('_', '-') + " file: jtune reads data files compressed whole (.gz, .bz2, .xz, .zst),"
                        + " not archives; extract it and give the folder");
            };
        } catch (IOException | RuntimeException e) {
            in.close();
            throw e;
        }
    }

    private static boolean startsWith(byte[] head, byte[] magic) {
        if (head.length < magic.length) return false;
        for (int i = 0; i < magic.length; i++) {
            if (head[i] != magic[i]) return false;
        }
        return true;
    }
}
