package dev.jtune.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.model.engine.Autograd;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.DenseLinear;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.SequencedMap;
import org.junit.jupiter.api.Test;

/**
 * Axolotl's {@code fp8: true} against torchao's own code (tools/reference/fp8_expected.py: pytorch/ao v0.18.0's
 * Float8Linear with the default tensorwise recipe and emulate=True, in torch 2.13): a 32×64 linear on a [2,5,64]
 * input, forward output and the input's and weight's gradients, in fp32 and bf16; a wide-range case (values falling
 * to e4m3's and e5m2's subnormals and to zero after scaling), a zero output gradient (scale at EPS), and the
 * {@code enable_fsdp_float8_all_gather} config, whose numerics on one process are the same. Every value bit for bit:
 * jtune's kernel runs the same aten ops on libtorch 2.7.1, and the fp32 GEMMs of these sizes sum in the same order.
 * Which linears accelerate 1.15.0 converts is checked against its own filter over transformers' models.
 */
class Fp8FixtureTest {
    private static JsonNode fixture() throws IOException {
        try (InputStream in = Fp8FixtureTest.class.getResourceAsStream("/fixtures/fp8_expected.json")) {
            assertNotNull(in, "fixture missing");
            return new ObjectMapper().readTree(in);
        }
    }

    @Test
    void forwardAndGradientsMatchTorchaoBitForBit() throws IOException {
        int checked = 0;
        for (JsonNode c : fixture().get("cases")) {
            String name = c.get("name").asText() + " " + c.get("dtype").asText();
            Dtype dtype = c.get("dtype").asText().equals("bfloat16") ? Dtype.BF16 : Dtype.FP32;
            try (NDManager m = Torch.newManager()) {
                NDArray x = in(m, QatFixtureTest.f32(c.get("x")), shape(c.get("x_shape")), dtype);
                NDArray w = in(m, QatFixtureTest.f32(c.get("w")), shape(c.get("w_shape")), dtype);
                x.setRequiresGradient(true);
                w.setRequiresGradient(true);
                DenseLinear linear = new DenseLinear(w);
                linear.fakeQuantize(new Fp8());
                // A product after the projection, so that its gradient goes through autograd before the deferred step.
                NDArray y = Autograd.withGrad(() -> linear.forward(x));
                NDArray g = in(m, QatFixtureTest.f32(c.get("grad_out")), y.getShape(), dtype);
                assertBits(name + ": output", QatFixtureTest.f32(c.get("y")), fp32(y));
                try (NDArray y2 = Autograd.withGrad(() -> y.mul(2))) {
                    Autograd.backward(y2, g.mul(0.5)); // g * 0.5 * 2 == g exactly
                }
                assertBits(name + ": input gradient", QatFixtureTest.f32(c.get("grad_x")), fp32(Autograd.gradient(x)));
                assertBits(name + ": weight gradient", QatFixtureTest.f32(c.get("grad_w")), fp32(Autograd.gradient(w)));
                checked++;
            }
        }
        assertEquals(8, checked);
    }

    /**
     * A pre-norm decoder layer's shape (tools/reference/fp8_expected.py block_case): six fp8 projections, q/k and
     * gate/up sharing their input, two residual adds, backward from the output: the deferred steps give the input's
     * and every weight's gradient bit for bit as torchao under one autograd graph (the partial gradients meet only
     * in two-term sums: the residual adds and the leaf's accumulation).
     */
    @Test
    void aDecoderBlockMatchesTorchaoBitForBit() throws IOException {
        int checked = 0;
        for (JsonNode c : fixture().get("blocks")) {
            String name = "block " + c.get("dtype").asText();
            Dtype dtype = c.get("dtype").asText().equals("bfloat16") ? Dtype.BF16 : Dtype.FP32;
            try (NDManager m = Torch.newManager()) {
                NDArray x = in(m, QatFixtureTest.f32(c.get("x")), new Shape(2, 5, 64), dtype);
                NDArray n1 = in(m, QatFixtureTest.f32(c.get("n1")), new Shape(64), dtype);
                NDArray n2 = in(m, QatFixtureTest.f32(c.get("n2")), new Shape(64), dtype);
                x.setRequiresGradient(true);
                java.util.Map<String, DenseLinear> lin = new java.util.LinkedHashMap<>();
                java.util.Map<String, NDArray> w = new java.util.LinkedHashMap<>();
                for (String n : List.of("q", "k", "o", "gate", "up", "down")) {
                    NDArray wi = in(m, QatFixtureTest.f32(c.get("weights").get(n)),
                            n.equals("down") ? new Shape(64, 128) : n.equals("gate") || n.equals("up")
                                    ? new Shape(128, 64) : new Shape(64, 64), dtype);
                    wi.setRequiresGradient(true);
                    w.put(n, wi);
                    DenseLinear l = new DenseLinear(wi);
                    l.fakeQuantize(new Fp8());
                    lin.put(n, l);
                }
                NDArray out = Autograd.withGrad(() -> {
                    NDArray a = x.mul(n1);
                    NDArray att = lin.get("q").forward(a).mul(lin.get("k").forward(a).tanh());
                    NDArray h = x.add(lin.get("o").forward(att));
                    NDArray b = h.mul(n2);
                    NDArray gate = lin.get("gate").forward(b);
                    NDArray act = gate.mul(ai.djl.nn.Activation.sigmoid(gate)).mul(lin.get("up").forward(b));
                    return h.add(lin.get("down").forward(act));
                });
                assertBits(name + ": output", QatFixtureTest.f32(c.get("y")), fp32(out));
                Autograd.backward(out, in(m, QatFixtureTest.f32(c.get("grad_out")), out.getShape(), dtype));
                assertBits(name + ": input gradient", QatFixtureTest.f32(c.get("grad_x")), fp32(Autograd.gradient(x)));
                for (var e : w.entrySet()) {
                    assertBits(name + ": " + e.getKey() + " weight gradient",
                            QatFixtureTest.f32(c.get("grads").get(e.getKey())), fp32(Autograd.gradient(e.getValue())));
                }
                checked++;
            }
        }
        assertEquals(2, checked);
    }

    /** Two projections over one input (q/k/v): their input gradients summed, then one backward into the input. */
    @Test
    void projectionsSharingAnInputAddTheirGradients() throws IOException {
        JsonNode c = fixture().get("cases").get(0);
        try (NDManager m = Torch.newManager()) {
            NDArray x0 = in(m, QatFixtureTest.f32(c.get("x")), shape(c.get("x_shape")), Dtype.FP32);
            NDArray w = in(m, QatFixtureTest.f32(c.get("w")), shape(c.get("w_shape")), Dtype.FP32);
            float[] wv = QatFixtureTest.f32(c.get("w"));
            float[] half = new float[wv.length];
            for (int i = 0; i < wv.length; i++) {
                half[i] = wv[i] * -0.5f;
            }
            NDArray wa = m.create(wv, w.getShape());
            NDArray wb = m.create(half, w.getShape());
            x0.setRequiresGradient(true);
            wa.setRequiresGradient(true);
            wb.setRequiresGradient(true);
            DenseLinear a = new DenseLinear(wa);
            DenseLinear b = new DenseLinear(wb);
            a.fakeQuantize(new Fp8());
            b.fakeQuantize(new Fp8());
            NDArray g = in(m, QatFixtureTest.f32(c.get("grad_out")), new Shape(2, 5, 32), Dtype.FP32);
            NDArray[] out = Autograd.withGrad(() -> {
                NDArray x = x0.mul(3); // a shared non-leaf input, as a norm's output
                return new NDArray[] {a.forward(x), b.forward(x)};
            });
            NDArray loss = Autograd.withGrad(() -> out[0].mul(g).sum().add(out[1].mul(g).sum()));
            Autograd.backward(loss);
            // Expected: each projection's torchao input gradient (backward_mm), added latest first, times 3.
            NDArray xs = x0.mul(3).reshape(-1, 64);
            NDArray gradA = Fp8.backward(xs, w, g).get(0);
            NDArray gradB = Fp8.backward(xs, m.create(half, w.getShape()), g).get(0);
            float[] expected = gradB.add(gradA).mul(3).toFloatArray();
            assertBits("shared input gradient", expected, fp32(Autograd.gradient(x0)));
            assertBits("first weight gradient", fp32(Fp8.backward(xs, w, g).get(1)), fp32(Autograd.gradient(wa)));
            assertBits("second weight gradient", fp32(Fp8.backward(xs, m.create(half, w.getShape()), g).get(1)),
                    fp32(Autograd.gradient(wb)));
        }
    }

    @Test
    void convertsTheLinearsAccelerateConverts() throws IOException {
        JsonNode filters = fixture().get("filters");
        int checked = 0;
        for (var it = filters.fields(); it.hasNext(); ) {
            var e = it.next();
            if (e.getKey().startsWith("family:")) {
                checked += familyConverts(e.getKey().substring("family:".length()), e.getValue());
                continue;
            }
            SequencedMap<String, long[]> linears = new LinkedHashMap<>();
            for (JsonNode l : e.getValue().get("linears")) {
                linears.put(l.get(0).asText(), new long[] {l.get(1).asLong(), l.get(2).asLong()});
            }
            List<String> expected = new ArrayList<>();
            e.getValue().get("converted").forEach(n -> expected.add(n.asText()));
            assertEquals(expected, Fp8.converted(linears), e.getKey());
            checked++;
        }
        assertEquals(10, checked);
        // Axolotl's router filter: a path segment "gate" or "router", not gate_proj.
        SequencedMap<String, long[]> moe = new LinkedHashMap<>();
        for (String n : List.of("model.layers.0.self_attn.q_proj", "model.layers.0.block_sparse_moe.gate",
                "model.layers.0.mlp.router.layer", "model.layers.0.mlp.gate_proj", "lm_head")) {
            moe.put(n, new long[] {64, 64});
        }
        assertEquals(List.of("model.layers.0.mlp.gate_proj"), Fp8.converted(moe));
    }

    /** jtune's family fixture (a transformers checkpoint) loaded and attached: accelerate's names, in its order. */
    private static int familyConverts(String family, JsonNode expected) {
        java.nio.file.Path dir = java.nio.file.Path.of("../model/src/test/resources/fixtures/families", family);
        List<String> names = new ArrayList<>();
        expected.get("converted").forEach(n -> names.add(n.asText()));
        try (var checkpoint = dev.jtune.model.hf.HfCheckpoint.open(dir); NDManager m = Torch.newManager();
                var model = dev.jtune.model.llama.LlamaModel.load(checkpoint.config(), checkpoint, Dtype.FP32, m)) {
            assertEquals(names, Fp8.attach(model, new Fp8()), family);
            int fp8 = 0;
            for (var e : model.linears().entrySet()) {
                boolean on = e.getValue() instanceof DenseLinear d && d.fakeQuant() instanceof Fp8;
                assertEquals(names.contains(e.getKey()), on, family + " " + e.getKey());
                fp8 += on ? 1 : 0;
            }
            assertEquals(names.size(), fp8, family);
        }
        return 1;
    }

    private static NDArray in(NDManager m, float[] v, Shape shape, Dtype dtype) {
        NDArray a = m.create(v, shape);
        return dtype == Dtype.FP32 ? a : Kernels.get().cast(a, dtype);
    }

    private static float[] fp32(NDArray a) {
        assertNotNull(a, "no gradient");
        try (NDArray f = Kernels.get().cast(a, Dtype.FP32)) {
            return f.toFloatArray();
        }
    }

    private static Shape shape(JsonNode n) {
        long[] s = new long[n.size()];
        for (int i = 0; i < s.length; i++) {
            s[i] = n.get(i).asLong();
        }
        return new Shape(s);
    }

    private static void assertBits(String what, float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length, what + ": length");
        int differ = 0;
        int first = -1;
        boolean nonzero = false;
        for (int i = 0; i < expected.length; i++) {
            nonzero |= expected[i] != 0;
            if (Float.floatToIntBits(expected[i]) != Float.floatToIntBits(actual[i])) {
                differ++;
                if (first < 0) {
                    first = i;
                }
            }
        }
        assertEquals(0, differ, what + ": " + differ + " of " + expected.length + " values differ, first at " + first
                + (first >= 0 ? " (torchao " + expected[first] + ", jtune " + actual[first] + ")" : ""));
        assertTrue(nonzero || what.contains("zero-grad"), what + ": all zero");
    }
}
