package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import dev.jtune.data.dataset.Batch;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.testkit.TinyLlama;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * use_tensorboard: event files read back by an independent decoder of TFRecord framing and the Event protocol buffer
 * (CRCs checked), with values equal to metrics.jsonl's.
 */
class TensorBoardTest {
    /** One decoded event: wall time, step, file_version or a scalar (tag, value). */
    record Event(double wallTime, long step, String fileVersion, String tag, float value) {}

    /** TFRecord records of {@code file}, each CRC checked. */
    static List<byte[]> records(Path file) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        List<byte[]> out = new ArrayList<>();
        while (b.hasRemaining()) {
            byte[] len = new byte[8];
            b.get(len);
            assertEquals(TensorBoard.maskedCrc(len), b.getInt(), "length CRC");
            byte[] data = new byte[(int) ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).getLong()];
            b.get(data);
            assertEquals(TensorBoard.maskedCrc(data), b.getInt(), "data CRC");
            out.add(data);
        }
        return out;
    }

    private static long varint(ByteBuffer b) {
        long v = 0;
        for (int shift = 0; ; shift += 7) {
            int x = b.get() & 0xff;
            v |= (long) (x & 0x7f) << shift;
            if (x < 0x80) return v;
        }
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[(int) varint(b)];
        b.get(out);
        return out;
    }

    /** Decodes tensorflow.Event with a Summary of one simple_value Value; fails on any other field. */
    static Event decode(byte[] data) {
        ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        double wall = 0;
        long step = 0;
        String version = null;
        String tag = null;
        float value = Float.NaN;
        while (b.hasRemaining()) {
            int key = (int) varint(b);
            switch (key) {
                case 0x09 -> wall = b.getDouble();
                case 0x10 -> step = varint(b);
                case 0x1a -> version = new String(bytes(b), StandardCharsets.UTF_8);
                case 0x2a -> {
                    ByteBuffer summary = ByteBuffer.wrap(bytes(b)).order(ByteOrder.LITTLE_ENDIAN);
                    assertEquals(0x0a, varint(summary), "Summary.value");
                    ByteBuffer v = ByteBuffer.wrap(bytes(summary)).order(ByteOrder.LITTLE_ENDIAN);
                    while (v.hasRemaining()) {
                        int k = (int) varint(v);
                        switch (k) {
                            case 0x0a -> tag = new String(bytes(v), StandardCharsets.UTF_8);
                            case 0x15 -> value = v.getFloat();
                            default -> throw new AssertionError("Value field key " + k);
                        }
                    }
                    assertTrue(!summary.hasRemaining(), "one value per summary");
                }
                default -> throw new AssertionError("Event field key " + key);
            }
        }
        return new Event(wall, step, version, tag, value);
    }

    @Test
    void maskedCrcIsTfRecords() {
        // tensorboard's own masked_crc32c (tensorboard 2.21, compat/tensorflow_stub/pywrap_tensorflow.py) of
        // b"123456789" and of the length 24 as uint64 LE.
        assertEquals(0xc78ab0e5, TensorBoard.maskedCrc("123456789".getBytes(StandardCharsets.US_ASCII)));
        assertEquals(0x224b7fa3, TensorBoard.maskedCrc(new byte[] {24, 0, 0, 0, 0, 0, 0, 0}));
    }

    @Test
    void tagsAsRewriteLogs() {
        assertEquals("train/loss", TensorBoard.tag("loss"));
        assertEquals("train/learning_rate", TensorBoard.tag("learning_rate"));
        assertEquals("eval/loss", TensorBoard.tag("eval_loss"));
        assertEquals("test/loss", TensorBoard.tag("test_loss"));
    }

    @Test
    void aTrainingRunWritesItsMetricsAsEvents(@TempDir Path out) throws IOException {
        List<Batch> train = TinySetup.batches(1, 8, 2, 24);
        List<Batch> eval = TinySetup.batches(2, 2, 2, 24);
        TrainerOptions o = TrainerOptions.defaults(3e-3).toBuilder().maxSteps(4).loggingSteps(1).evalSteps(2)
                .handleSigterm(false).useTensorboard(true).build();
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 1)) {
            Trainer.run(o, new FullFineTuning(model), BatchPlan.of(train), BatchPlan.of(eval), out,
                    new PrintStream(new ByteArrayOutputStream()));
        }
        List<Path> files;
        try (Stream<Path> s = Files.walk(out.resolve("runs"))) {
            files = s.filter(f -> f.getFileName().toString().startsWith("events.out.tfevents.")).toList();
        }
        assertEquals(1, files.size(), files.toString());
        assertTrue(files.get(0).getParent().getFileName().toString().matches("[A-Z][a-z]{2}\\d{2}_\\d{2}-\\d{2}-\\d{2}_.+"),
                files.get(0).toString());
        List<Event> events = records(files.get(0)).stream().map(TensorBoardTest::decode).toList();
        assertEquals("brain.Event:2", events.get(0).fileVersion());
        List<Event> scalars = events.subList(1, events.size());
        // Every number of every metrics.jsonl line but its step, in order, at its step.
        List<Event> expected = new ArrayList<>();
        for (JsonNode line : TrainerTest.metrics(out)) {
            long step = line.get("step").asLong();
            line.properties().forEach(e -> {
                if (!e.getKey().equals("step") && e.getValue().isNumber()) {
                    expected.add(new Event(0, step, null, TensorBoard.tag(e.getKey()), (float) e.getValue().asDouble()));
                }
            });
        }
        assertEquals(expected.size(), scalars.size());
        for (int i = 0; i < expected.size(); i++) {
            Event e = expected.get(i);
            Event a = scalars.get(i);
            assertEquals(List.of(e.step(), e.tag(), e.value()), List.of(a.step(), a.tag(), a.value()), "event " + i);
            assertTrue(a.wallTime() > 1.7e9, "wall time in seconds");
        }
        List<String> tags = scalars.stream().map(Event::tag).distinct().toList();
        assertTrue(tags.containsAll(List.of("train/loss", "train/learning_rate", "train/grad_norm",
                "train/tokens_per_second", "eval/loss", "train/epoch")), tags.toString());
        assertEquals(List.of(1L, 2L, 3L, 4L), scalars.stream().filter(e -> e.tag().equals("train/loss"))
                .map(Event::step).toList());
        assertTrue(Arrays.asList(0L, 2L, 4L).containsAll(scalars.stream().filter(e -> e.tag().equals("eval/loss"))
                .map(Event::step).toList()));
    }

    @Test
    void offWritesNoEvents(@TempDir Path out) throws IOException {
        List<Batch> train = TinySetup.batches(1, 4, 2, 24);
        TrainerOptions o = TrainerOptions.defaults(3e-3).toBuilder().maxSteps(2).loggingSteps(1).handleSigterm(false)
                .build();
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 1)) {
            Trainer.run(o, new FullFineTuning(model), BatchPlan.of(train), null, out,
                    new PrintStream(new ByteArrayOutputStream()));
        }
        assertTrue(!Files.exists(out.resolve("runs")));
    }
}
