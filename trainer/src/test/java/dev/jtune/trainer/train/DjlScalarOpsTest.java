package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.jar.JarFile;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * No jtune class calls DJL's scalar ops ({@code NDArray.mul(Number)}, {@code div(Number)}, {@code add(Number)}, ...)
 * except where the result never enters autograd. DJL wraps the number in a tensor over Java memory and closes it at
 * once; autograd keeps that tensor for backward, which then reads freed memory after a garbage collection (the cause
 * of the DataParallelTest flake, see {@link GcDuringTrainingTest}). Multiply by {@code manager.full(new Shape(), v)}
 * instead: libtorch owns that scalar.
 *
 * <p>Reads the constant pool of every compiled jtune class on the test classpath (all modules: trainer depends on
 * them) for a method reference owned by {@code ai/djl/ndarray/NDArray} whose descriptor takes a {@code Number}.
 */
class DjlScalarOpsTest {
    /** Scalar ops allowed ("class#method"), each with the reason no autograd graph can keep the scalar. */
    private static final Map<String, String> ALLOWED = Map.of(
            "dev/jtune/model/llama/Rope#div(Ljava/lang/Number;)Lai/djl/ndarray/NDArray;",
            "divides the inverse frequencies by the linear scaling factor once, at construction, outside autograd",
            "dev/jtune/trainer/train/Trainer#set(Lai/djl/ndarray/index/NDIndex;Ljava/lang/Number;)V",
            "zeroes frozen rows of a gradient after backward, outside autograd",
            "dev/jtune/trainer/optim/Muon#mul(Ljava/lang/Number;)Lai/djl/ndarray/NDArray;",
            "Muon's update and Newton-Schulz iteration: optimizer arithmetic on detached tensors, outside autograd",
            "dev/jtune/trainer/optim/Muon#div(Ljava/lang/Number;)Lai/djl/ndarray/NDArray;",
            "Muon's normalisation before Newton-Schulz: optimizer arithmetic on detached tensors, outside autograd");

    private static final String NDARRAY = "ai/djl/ndarray/NDArray";

    @Test
    void noScalarOpOutsideTheAllowedClasses() throws IOException {
        Set<String> scanned = new TreeSet<>();
        Set<String> offenders = new TreeSet<>();
        Set<String> allowedSeen = new TreeSet<>();
        for (String entry : System.getProperty("java.class.path").split(java.io.File.pathSeparator)) {
            Path path = Path.of(entry);
            for (ClassFile c : jtuneClasses(path)) {
                if (c.name().equals("dev/jtune/trainer/train/DjlScalarOpsTest$Offender")) {
                    continue; // the scan's own positive control
                }
                scanned.add(c.name());
                for (String call : scalarOps(c.bytes())) {
                    String key = c.name() + "#" + call;
                    if (ALLOWED.containsKey(key)) {
                        allowedSeen.add(key);
                    } else {
                        offenders.add(key);
                    }
                }
            }
        }
        assertTrue(scanned.stream().anyMatch(n -> n.startsWith("dev/jtune/model/")),
                "the model module's classes must be on the classpath: " + scanned.size() + " scanned");
        assertTrue(scanned.contains("dev/jtune/trainer/train/ForwardBackward"), "trainer's main classes scanned");
        assertEquals(Set.of(), offenders, "DJL scalar ops (use manager.full(new Shape(), value) instead)");
        // An allowed class that stopped using scalar ops leaves a stale exemption behind.
        assertEquals(ALLOWED.keySet(), allowedSeen, "exemptions still needed");
    }

    @Test
    void theScanFindsAScalarOp() throws IOException {
        // This test class's own bytes: the call below must be found, so the scan can fail.
        byte[] bytes;
        try (InputStream in = DjlScalarOpsTest.class.getResourceAsStream("DjlScalarOpsTest$Offender.class")) {
            bytes = in.readAllBytes();
        }
        assertEquals(List.of("mul(Ljava/lang/Number;)Lai/djl/ndarray/NDArray;"), scalarOps(bytes));
    }

    /** Compiled only to be scanned by {@link #theScanFindsAScalarOp}. */
    static final class Offender {
        static ai.djl.ndarray.NDArray twice(ai.djl.ndarray.NDArray x) {
            return x.mul(2f);
        }
    }

    private record ClassFile(String name, byte[] bytes) {}

    private static List<ClassFile> jtuneClasses(Path entry) {
        List<ClassFile> out = new ArrayList<>();
        try {
            if (Files.isDirectory(entry)) {
                Path root = entry.resolve("dev/jtune");
                if (Files.isDirectory(root)) {
                    try (Stream<Path> files = Files.walk(root)) {
                        for (Path f : files.filter(p -> p.toString().endsWith(".class")).toList()) {
                            String name = entry.relativize(f).toString().replace('\\', '/');
                            out.add(new ClassFile(name.substring(0, name.length() - 6), Files.readAllBytes(f)));
                        }
                    }
                }
            } else if (entry.toString().endsWith(".jar") && entry.getFileName().toString().startsWith("jtune-")) {
                try (JarFile jar = new JarFile(entry.toFile())) {
                    for (var e : java.util.Collections.list(jar.entries())) {
                        if (e.getName().startsWith("dev/jtune/") && e.getName().endsWith(".class")) {
                            try (InputStream in = jar.getInputStream(e)) {
                                out.add(new ClassFile(e.getName().substring(0, e.getName().length() - 6),
                                        in.readAllBytes()));
                            }
                        }
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(entry.toString(), e);
        }
        return out;
    }

    /** Method references owned by NDArray whose descriptor takes a Number, as "name(descriptor)". */
    static List<String> scalarOps(byte[] classBytes) throws IOException {
        DataInputStream in = new DataInputStream(new java.io.ByteArrayInputStream(classBytes));
        if (in.readInt() != 0xCAFEBABE) {
            throw new IOException("not a class file");
        }
        in.readUnsignedShort(); // minor
        in.readUnsignedShort(); // major
        int count = in.readUnsignedShort();
        String[] utf8 = new String[count];
        int[] classNameIndex = new int[count];
        int[][] refs = new int[count][]; // {classIndex, nameAndTypeIndex} of Methodref / InterfaceMethodref
        int[][] nameAndType = new int[count][];
        for (int i = 1; i < count; i++) {
            int tag = in.readUnsignedByte();
            switch (tag) {
                case 1 -> utf8[i] = in.readUTF();
                case 7, 8, 16, 19, 20 -> classNameIndex[i] = in.readUnsignedShort();
                case 3, 4 -> in.readInt();
                case 5, 6 -> {
                    in.readLong();
                    i++; // eight-byte constants take two slots
                }
                case 9 -> {
                    in.readUnsignedShort();
                    in.readUnsignedShort();
                }
                case 10, 11 -> refs[i] = new int[] {in.readUnsignedShort(), in.readUnsignedShort()};
                case 12 -> nameAndType[i] = new int[] {in.readUnsignedShort(), in.readUnsignedShort()};
                case 15 -> {
                    in.readUnsignedByte();
                    in.readUnsignedShort();
                }
                case 17, 18 -> {
                    in.readUnsignedShort();
                    in.readUnsignedShort();
                }
                default -> throw new IOException("unknown constant-pool tag " + tag);
            }
        }
        List<String> found = new ArrayList<>();
        for (int[] ref : refs) {
            if (ref == null || !NDARRAY.equals(utf8[classNameIndex[ref[0]]])) {
                continue;
            }
            int[] nt = nameAndType[ref[1]];
            String descriptor = utf8[nt[1]];
            String params = descriptor.substring(0, descriptor.indexOf(')') + 1);
            if (params.contains("Ljava/lang/Number;")) {
                found.add(utf8[nt[0]] + descriptor);
            }
        }
        return found;
    }
}
