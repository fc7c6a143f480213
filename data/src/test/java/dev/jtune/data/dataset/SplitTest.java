package dev.jtune.data.dataset;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.data.config.ValSetSize;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class SplitTest {
    private static List<Sample> samples(int n) {
        List<Sample> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(new Sample(new int[] {i, i}, new int[] {i, i}));
        return out;
    }

    private static Set<Integer> ids(List<Sample> s) {
        Set<Integer> out = new HashSet<>();
        for (Sample x : s) out.add(x.inputIds()[0]);
        return out;
    }

    @Test
    void fractionRoundsUpAndCountIsExact() {
        List<Sample> all = samples(101);
        assertEquals(11, Split.of(all, new ValSetSize.Fraction(0.1), 42).eval().size()); // ceil(10.1)
        assertEquals(90, Split.of(all, new ValSetSize.Fraction(0.1), 42).train().size());
        assertEquals(7, Split.of(all, new ValSetSize.Count(7), 42).eval().size());
        assertEquals(0, Split.of(all, ValSetSize.NONE, 42).eval().size());
        assertEquals(all, Split.of(all, ValSetSize.NONE, 42).train());
    }

    @Test
    void disjointCompleteDeterministicAndSeeded() {
        List<Sample> all = samples(200);
        Split a = Split.of(all, new ValSetSize.Count(50), 1);
        Set<Integer> train = ids(a.train());
        Set<Integer> eval = ids(a.eval());
        assertEquals(150, train.size());
        assertEquals(50, eval.size());
        train.retainAll(eval);
        assertTrue(train.isEmpty());
        assertEquals(ids(a.eval()), ids(Split.of(all, new ValSetSize.Count(50), 1).eval()));
        assertNotEquals(ids(a.eval()), ids(Split.of(all, new ValSetSize.Count(50), 2).eval()));
        // Training samples keep their relative order.
        int prev = -1;
        for (Sample s : a.train()) {
            assertTrue(s.inputIds()[0] > prev);
            prev = s.inputIds()[0];
        }
    }

    @Test
    void permutationIsUniformEnough() {
        // Each element lands in the first slot about equally often over many seeds (chi-square-ish bound).
        int n = 5;
        int trials = 20_000;
        int[] first = new int[n];
        for (int seed = 0; seed < trials; seed++) first[Split.permutation(n, seed)[0]]++;
        for (int c : first) assertEquals(trials / (double) n, c, 0.05 * trials / n);
    }
}
