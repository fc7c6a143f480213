package dev.jtune.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.hf.HfCheckpoint;
import dev.jtune.model.llama.ConfigException;
import dev.jtune.model.llama.LlamaModel;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A directory in the layout transformers saves a {@code load_in_8bit} model in ({@code tiny-int8-llama}, written by
 * {@code tools/reference/int8_reference.py checkpoint} from the PyTorch-written {@code tiny-bf16-llama} fixture): its
 * codes equal jtune's own quantization of the dense weights, and a model loaded over the stored codes computes what
 * one quantized at load computes, bit for bit.
 */
class Int8CheckpointTest {
    private static final Path DENSE = Path.of("../model/src/test/resources/fixtures/tiny-bf16-llama");

    private static Path fixture() throws Exception {
        return Path.of(Int8CheckpointTest.class.getResource("tiny-int8-llama/config.json").toURI()).getParent();
    }

    @Test
    void storedCodesEqualJtunesQuantizationOfTheDenseWeights() throws Exception {
        try (Int8Checkpoint ck = Int8Checkpoint.open(fixture()); HfCheckpoint dense = HfCheckpoint.open(DENSE)) {
            assertEquals(2 * 7, ck.quantizedModules().size(), "7 linears in each of 2 layers");
            assertFalse(ck.quantizedModules().stream().anyMatch(m -> m.contains("lm_head") || m.contains("embed")));
            assertEquals(6.0, ck.threshold());
            for (String m : ck.quantizedModules()) {
                float[] w = dense.floats(m + ".weight");
                Int8Tensor mine = Int8Quantizer.quantize(w, dense.shape(m + ".weight"));
                assertEquals(mine, ck.int8(m), m);
                float[] deq = ck.floats(m + ".weight");
                for (int i = 0; i < w.length; i++) {
                    assertEquals(w[i], deq[i], ck.int8(m).rowAbsmax()[i / mine.columns()] / 127 * 0.5001, m + " [" + i + "]");
                }
            }
            assertArrayEquals(dense.floats("model.norm.weight"), ck.floats("model.norm.weight"), "dense tensors as stored");
        }
    }

    @Test
    void modelOverTheStoredCodesEqualsOneQuantizedAtLoad() throws Exception {
        try (NDManager m = Torch.newManager(); Int8Checkpoint ck = Int8Checkpoint.open(fixture());
                HfCheckpoint dense = HfCheckpoint.open(DENSE);
                LlamaModel stored = LlamaModel.load(ck.config(), ck, Dtype.BF16, m, ck.linearFactory());
                LlamaModel quantized = LlamaModel.load(dense.config(), dense, Dtype.BF16, m, Int8.linearFactory())) {
            NDArray ids = m.create(new long[] {3, 17, 42, 7, 99, 5}).reshape(1, 6);
            float[] a;
            float[] b;
            try (NDArray la = stored.forward(ids, LlamaModel.defaultPositions(ids), null);
                    NDArray lb = quantized.forward(ids, LlamaModel.defaultPositions(ids), null)) {
                a = Kernels.get().cast(la, Dtype.FP32).toFloatArray();
                b = Kernels.get().cast(lb, Dtype.FP32).toFloatArray();
            }
            assertArrayEquals(b, a, "logits");
            assertTrue(stored.linears().values().stream().filter(l -> l instanceof Int8Linear).count() == 14);
        }
    }

    @Test
    void otherQuantizationConfigsAreRefusedNamingTheKey(@TempDir Path dir) throws Exception {
        String config = Files.readString(fixture().resolve("config.json"));
        Files.writeString(dir.resolve("config.json"), config.replace("\"llm_int8_has_fp16_weight\": false",
                "\"llm_int8_has_fp16_weight\": true"));
        var e = assertThrows(ConfigException.class, () -> Int8Checkpoint.open(dir));
        assertTrue(e.getMessage().contains("quantization_config.llm_int8_has_fp16_weight is true"), e.getMessage());
        Files.writeString(dir.resolve("config.json"), config.replace("\"load_in_8bit\": true", "\"load_in_8bit\": false"));
        e = assertThrows(ConfigException.class, () -> Int8Checkpoint.open(dir));
        assertTrue(e.getMessage().contains("quantization_config.load_in_8bit is not true"), e.getMessage());
        assertTrue(Int8Checkpoint.declares(fixture()));
        assertFalse(Int8Checkpoint.declares(DENSE));
    }
}
