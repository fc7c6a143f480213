package dev.jtune.trainer.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code float16: true} full fine-tuning's optimizer step (fp16 parameters, fp16 gradients, fp16 moments, no loss
 * scaling) against PyTorch's own {@code torch.optim.AdamW} and {@code clip_grad_norm_} on fp16 tensors (fixture from
 * tools/reference/adamw_fp16_expected.py, torch 2.13 CPU), bit for bit: the clipped norm, the clipped gradients, the
 * parameters and both moments after every step. Three cases: a plain run; transformers' default eps 1e-8, which fp16
 * cannot hold (torch's update makes nan where a moment underflowed); and a global norm that overflows fp16 (inf: the
 * clip coefficient is 0, the gradients become 0 and the step still runs), then an inf gradient value (nan weights),
 * as torch does: nothing special.
 */
class Fp16AdamWTorchFixtureTest {
    private static JsonNode fx;

    @BeforeAll
    static void read() throws IOException {
        try (InputStream in = Fp16AdamWTorchFixtureTest.class.getResourceAsStream("/fixtures/adamw_fp16_expected.json")) {
            fx = new ObjectMapper().readTree(in);
        }
    }

    private static float[] f32(JsonNode n) {
        ByteBuffer b = ByteBuffer.wrap(Base64.getDecoder().decode(n.asText())).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    private static long[] shape(JsonNode n) {
        long[] s = new long[n.size()];
        for (int i = 0; i < s.length; i++) s[i] = n.get(i).asLong();
        return s;
    }

    /** Bit for bit (every nan is the same nan, as Float.floatToIntBits makes it); returns the count of non-finite. */
    private static int assertBits(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        int nonFinite = 0;
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToIntBits(expected[i]) != Float.floatToIntBits(actual[i])) {
                throw new AssertionError(what + "[" + i + "]: expected " + expected[i] + ", got " + actual[i]);
            }
            if (!Float.isFinite(expected[i])) nonFinite++;
        }
        return nonFinite;
    }

    private static NDArray fp16(NDManager m, float[] values, Shape shape) {
        NDArray h = Kernels.get().cast(m.create(values, shape), Dtype.FP16);
        h.attach(m);
        assertBits(values, Tensors.floats(h), "fixture values must be fp16 values");
        return h;
    }

    /** Runs one case against torch's foreach path; returns the non-finite values seen in the final parameters. */
    private static int run(String name) {
        JsonNode c = fx.get("cases").get(name);
        JsonNode expected = c.get("foreach");
        JsonNode wd = c.get("weight_decay");
        int count = c.get("init").size();
        try (NDManager m = Torch.newManager()) {
            Map<String, NDArray> params = new LinkedHashMap<>();
            for (int i = 0; i < count; i++) {
                NDArray p = fp16(m, f32(c.get("init").get(i)), new Shape(shape(c.get("shapes").get(i))));
                p.setRequiresGradient(true);
                params.put("p" + i, p);
            }
            AdamW.Hyper hyper = new AdamW.Hyper(fx.get("betas").get(0).asDouble(), fx.get("betas").get(1).asDouble(),
                    c.get("eps").asDouble(), wd.get(0).asDouble());
            try (AdamW opt = new AdamW(params, hyper, n -> wd.get(Integer.parseInt(n.substring(1))).asDouble() > 0, m)) {
                for (NDArray mom : opt.expAvg().values()) {
                    assertEquals(Dtype.FP16, Kernels.get().dtypeOf(mom), "moments are zeros_like(param)");
                }
                JsonNode lrs = c.get("lrs");
                float[] norms = f32(expected.get("grad_norms"));
                int nonFinite = 0;
                for (int step = 0; step < lrs.size(); step++) {
                    Gradients.zero(params.values());
                    int i = 0;
                    for (NDArray p : params.values()) {
                        float[] g = f32(c.get("grads").get(step).get(i++));
                        // d/dp sum(fp32(p) * g) = fp16(g) = g exactly (g holds fp16 values, inf included).
                        try (NDManager s = m.newSubManager(); GradientCollector gc = Torch.engine().newGradientCollector()) {
                            NDArray wide = Kernels.get().cast(p, Dtype.FP32);
                            gc.backward(wide.mul(s.create(g, p.getShape())).sum());
                        }
                    }
                    double norm = GradClipping.clip(List.copyOf(params.values()), c.get("max_norm").asDouble(), m);
                    String at = name + " step " + step;
                    assertEquals(Float.floatToIntBits(norms[step]), Float.floatToIntBits((float) norm), at + ": grad norm "
                            + norm + ", torch " + norms[step]);
                    JsonNode st = expected.get("steps").get(step);
                    List<NDArray> grads = Gradients.open(params.values());
                    try {
                        for (int j = 0; j < count; j++) {
                            assertBits(f32(st.get("clipped_grads").get(j)), Tensors.floats(grads.get(j)), at + ": clipped grad " + j);
                        }
                    } finally {
                        Gradients.close(grads);
                    }
                    opt.step(lrs.get(step).asDouble());
                    nonFinite = 0;
                    for (int j = 0; j < count; j++) {
                        String p = "p" + j;
                        assertEquals(Dtype.FP16, Kernels.get().dtypeOf(params.get(p)));
                        nonFinite += assertBits(f32(st.get("params").get(j)), Tensors.floats(params.get(p)), at + ": " + p);
                        assertBits(f32(st.get("exp_avg").get(j)), Tensors.floats(opt.expAvg().get(p)), at + ": " + p + ".exp_avg");
                        assertBits(f32(st.get("exp_avg_sq").get(j)), Tensors.floats(opt.expAvgSq().get(p)),
                                at + ": " + p + ".exp_avg_sq");
                    }
                }
                return nonFinite;
            }
        }
    }

    @Test
    void plainStepsMatchTorchBitForBit() {
        assertEquals(0, run("plain"));
    }

    @Test
    void defaultEpsMakesTorchsNanInFp16() {
        // eps 1e-8 rounds away in fp16: where the second moment is 0 the update is 0/0, as in torch.
        assertTrue(run("default_eps") > 0, "the fixture's nan must be reproduced");
    }

    @Test
    void overflowingNormZeroesTheGradientsAsTorchDoes() {
        float[] norms = f32(fx.get("cases").get("overflow").get("foreach").get("grad_norms"));
        assertTrue(Float.isInfinite(norms[1]) && Float.isFinite(norms[2]), "the fixture overflows at step 1 only");
        assertEquals(1, run("overflow"), "the inf gradient value of the last step leaves one nan weight");
    }
}
