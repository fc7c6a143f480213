package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.trainer.dist.DistException;
import dev.jtune.trainer.dist.ThreadProcessGroup;
import dev.jtune.trainer.optim.AdamW;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Rank 0 fails while writing a checkpoint (its disk is full): every rank stops at that step, rank 0 with its own
 * error and the others naming the checkpoint, and nothing half-written is left where a resume would look.
 */
class CheckpointFailureTest {
    @TempDir
    Path tmp;

    /** The tiny adapter, whose {@link #saveWeights} fails after writing part of its file. */
    private record FullDisk(TrainableModel inner, IOException error) implements TrainableModel {
        @Override
        public LlamaModel model() {
            return inner.model();
        }

        @Override
        public Map<String, NDArray> parameters() {
            return inner.parameters();
        }

        @Override
        public void saveWeights(Path dir) throws IOException {
            Files.write(dir.resolve("adapter_model.safetensors"), new byte[100]);
            throw error;
        }
    }

    @Test
    void rankZeroFailingToSaveStopsEveryRankAtThatStep() throws Exception {
        IOException full = new IOException("No space left on device");
        TrainerOptions o = TrainerOptions.defaults(3e-3).toBuilder().maxSteps(4).lrScheduler("constant")
                .warmupSteps(0).loggingSteps(1).saveSteps(2).adam(new AdamW.Hyper(0.9, 0.999, 1e-8, 0.0))
                .handleSigterm(false).build();
        var data = TinySetup.batches(11, 8, 2, 16);
        List<Object> outcomes = ThreadProcessGroup.run(2, g -> {
            try (NDManager m = Torch.newManager()) {
                TrainableModel a = TinySetup.TinyAdapter.load(m, 7, Dtype.FP32, 4);
                TrainableModel model = g.rank() == 0 ? new FullDisk(a, full) : a;
                Trainer.run(o, model, BatchPlan.of(data), null, tmp.resolve("out" + g.rank()),
                        new PrintStream(new ByteArrayOutputStream()), g, null);
                return "finished";
            } catch (Exception e) {
                return e;
            }
        });
        assertSame(full, outcomes.get(0), "rank 0 reports its own error");
        DistException other = assertInstanceOf(DistException.class, outcomes.get(1), "rank 1 does not train on");
        assertTrue(other.getMessage().contains("rank 0 failed to write checkpoint-2"), other.getMessage());

        Path out = tmp.resolve("out0");
        try (Stream<Path> left = Files.list(out)) {
            List<String> names = left.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("checkpoint"))
                    .toList();
            assertEquals(List.of(), names, "no checkpoint, complete or partial, was left behind");
        }
        long logged = Files.readAllLines(out.resolve(Trainer.METRICS_FILE)).stream()
                .filter(l -> l.contains("\"loss\"")).count();
        assertEquals(2, logged, "rank 0 trained the two steps before the checkpoint, and no more");
    }
}
