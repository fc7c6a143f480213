package dev.jtune.trainer.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Torch;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Axolotl's ReLoRA optimizer pruning ({@link AdamW#pruneForReLora}; monkeypatch/relora.py reset_optimizer): the
 * magnitude rule against torch.quantile's linear interpolation worked by hand, on fp32 moments and on bitsandbytes'
 * uint8 codes (which Axolotl prunes as they are), nothing for bitsandbytes' 32-bit state (its keys are not in
 * Axolotl's list), random pruning's share, and the step count kept.
 */
class ReLoraPruneTest {
    @Test
    void pruningFollowsTorchQuantile() {
        try (NDManager m = Torch.newManager()) {
            // fp32 moments: |x| = 1..100 -> quantile(0.9) = 90 + 0.1 * (91 - 90) = 90.1: 91..100 survive.
            float[] x = new float[100];
            for (int i = 0; i < 100; i++) x[i] = (i % 3 == 0 ? -1 : 1) * (float) ((i * 37) % 100 + 1);
            Map<String, NDArray> p = Map.of("m.lora_A.weight", m.zeros(new Shape(100)));
            try (AdamW opt = new AdamW(p, AdamW.DEFAULTS, n -> true, m)) {
                opt.restore("m.lora_A.weight", x, x, 3);
                long[] zt = opt.pruneForReLora("m.lora_A.weight", true, 0.9, new SplittableRandom(1));
                assertEquals(180, zt[0]);
                assertEquals(200, zt[1]);
                float[] after = opt.expAvg().get("m.lora_A.weight").toFloatArray();
                for (int i = 0; i < 100; i++) assertTrue((Math.abs(x[i]) > 90.1 ? x[i] : 0f) == after[i], "value " + i);
                assertEquals(3, opt.step("m.lora_A.weight"));
            }
            // bitsandbytes' 8-bit state: Axolotl prunes the uint8 codes. Codes i % 256 over 4096 values: quantile 0.9
            // at rank 3685.5 is code 230 -> codes 231..255 survive, the rest become code 0.
            Map<String, NDArray> q = Map.of("m.lora_B.weight", m.zeros(new Shape(4096)));
            try (AdamW opt = new AdamW(q, AdamW.DEFAULTS.with(AdamW.Variant.BNB_8BIT), n -> true, m)) {
                float[] codes = new float[4096];
                float[] absmax = new float[4096];
                for (int i = 0; i < 4096; i++) {
                    codes[i] = i % 256;
                    absmax[i] = 1f;
                }
                opt.restoreChannels("m.lora_B.weight", new float[][] {codes, codes, absmax, absmax}, 1);
                opt.pruneForReLora("m.lora_B.weight", true, 0.9, new SplittableRandom(1));
                int[] s1 = opt.quantizedState("m.lora_B.weight").state1();
                for (int i = 0; i < 4096; i++) assertEquals(i % 256 > 230 ? i % 256 : 0, s1[i], "code " + i);
            }
            // bitsandbytes' 32-bit AdamW: its state keys are not in Axolotl's list; nothing pruned.
            try (AdamW opt = new AdamW(p, AdamW.DEFAULTS.with(AdamW.Variant.BNB_32BIT), n -> true, m)) {
                opt.restore("m.lora_A.weight", x, x, 3);
                assertEquals(0, opt.pruneForReLora("m.lora_A.weight", true, 0.9, new SplittableRandom(1))[1]);
                assertArrayEquals(x, opt.expAvg().get("m.lora_A.weight").toFloatArray());
            }
            // Random pruning at 0.5 of 2 x 10000 values.
            Map<String, NDArray> big = Map.of("m.lora_A.weight", m.zeros(new Shape(10000)));
            try (AdamW opt = new AdamW(big, AdamW.DEFAULTS, n -> true, m)) {
                float[] ones = new float[10000];
                java.util.Arrays.fill(ones, 1f);
                opt.restore("m.lora_A.weight", ones, ones, 1);
                long zeros = opt.pruneForReLora("m.lora_A.weight", false, 0.5, new SplittableRandom(2))[0];
                assertTrue(Math.abs(zeros - 10000) < 400, zeros + " zeroed");
            }
        }
    }

}
