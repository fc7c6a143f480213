package dev.jtune.data.config;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Split slices against Hugging Face datasets' own rule: every expected range below is what datasets 5.0.1's
 * {@code ReadInstruction.from_spec} and {@code _rel_to_abs_instr} (arrow_reader.py, run by CPython from the wheel)
 * gave for that spec and row count.
 */
class SplitSpecTest {
    private static void reads(String spec, long n, long[]... expected) {
        List<SplitSpec.Instruction> instructions = SplitSpec.parse(spec).instructions();
        assertEquals(expected.length, instructions.size(), spec);
        for (int i = 0; i < expected.length; i++) {
            assertArrayEquals(expected[i], instructions.get(i).rows(n), spec + " of " + n + " rows, part " + i);
        }
    }

    private static long[] r(long from, long to) {
        return new long[] {from, to};
    }

    @Test
    void slicesAsDatasetsComputesThem() {
        reads("train[:20%]", 10, r(0, 2));
        reads("train[:20%]", 7, r(0, 1));
        reads("train[10:100]", 250, r(10, 100));
        reads("train[10:100]", 50, r(10, 50));
        reads("train[-10%:]", 7, r(6, 7));
        reads("train[-10%:]", 25, r(23, 25));
        reads("train[:10%]+train[-5%:]", 30, r(0, 3), r(28, 30));
        reads("train[:10%] + train[-5%:]", 50, r(0, 5), r(48, 50));
        reads("train[1_0:]", 12, r(10, 12));
        reads("train[10:20%]", 100, r(10, 20)); // one % makes both boundaries percents
        reads("train", 4, r(0, 4));
        reads("train[:-1]", 4, r(0, 3));
        reads("train[-150:]", 4, r(0, 4));
        reads("train[-3:]", 2, r(0, 2));
        // datasets gives (5, 2) here, which reads nothing from a sharded split: empty.
        reads("train[5:2]", 10, r(5, 5));
        reads("train[:33%](pct1_dropremainder)", 250, r(0, 66));
    }

    @Test
    void closestRoundingIsPythonsRoundHalfToEven() {
        reads("train[:50%]", 5, r(0, 2));   // 2.5 -> 2
        reads("train[:15%]", 10, r(0, 2));  // 1.5 -> 2
        reads("train[:25%]", 10, r(0, 2));  // 2.5 -> 2
        reads("train[25%:75%]", 6, r(2, 4)); // 1.5 -> 2, 4.5 -> 4
    }

    @Test
    void whatDatasetsRefusesIsRefused() {
        for (var c : List.of(
                List.of("train[:120%]", "percent boundaries must be within -100 and 100"),
                List.of("train[:10](closest)", "a rounding applies only to percent slices"),
                List.of("train[:10%](floor)", "rounding must be closest or pct1_dropremainder"),
                List.of("train[:10%]+train[:10%](pct1_dropremainder)", "must use the same rounding"),
                List.of("train[1__0:]", "'1__0' is not a whole number"),
                List.of("train[_1:]", "'_1' is not a whole number"),
                List.of("train[::2]", "unrecognized split 'train[::2]'"))) {
            var e = assertThrows(IllegalArgumentException.class, () -> SplitSpec.parse(c.get(0)));
            assertTrue(e.getMessage().contains(c.get(1)), e.getMessage());
        }
        SplitSpec.parse("train[:10]+train[:10%](pct1_dropremainder)"); // a row-count slice mixes with any rounding
        var e = assertThrows(IllegalArgumentException.class,
                () -> SplitSpec.parse("train[:20%](pct1_dropremainder)").instructions().get(0).rows(50));
        assertTrue(e.getMessage().contains("fewer than 100 rows"), e.getMessage());
    }

    @Test
    void aBadSliceIsAConfigErrorAtItsLine() {
        var e = assertThrows(ConfigException.class, () -> TrainConfig.parse("""
                base_model: m
                datasets:
                  - path: a.jsonl
                    type: completion
                    split: train[:120%]
                """, Path.of("configs/x.yml")));
        assertEquals("configs/x.yml:5:12: datasets[0].split: split 'train[:120%]': percent boundaries must be within"
                + " -100 and 100, got 120", e.getMessage());
    }
}
