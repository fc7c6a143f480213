package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import dev.jtune.model.engine.Kernels;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The gated feed-forward block {@code down(act(gate(x)) * up(x))}: SwiGLU (silu) or Gemma's GeGLU (tanh-approximated
 * gelu); gate and up are one fused {@code gate_up_proj} in Phi-3 (gate first).
 */
public final class Mlp implements AutoCloseable {
    private final Linear gate; // null when fused
    private final Linear up; // null when fused
    private final Linear gateUp; // null unless fused
    private final Linear down;
    private final boolean gelu;

    /** A SwiGLU block of separate projections (Llama). */
    public Mlp(Linear gate, Linear up, Linear down) {
        this(gate, up, null, down, false);
    }

    /**
     * @param gateUp the fused projection (gate and up null), or null
     * @param gelu GeGLU with tanh-approximated gelu instead of SwiGLU
     */
    public Mlp(Linear gate, Linear up, Linear gateUp, Linear down, boolean gelu) {
        this.gate = gate;
        this.up = up;
        this.gateUp = gateUp;
        this.down = down;
        this.gelu = gelu;
    }

    /** [B,T,E] → [B,T,E]. */
    public NDArray forward(NDArray x) {
        Kernels k = Kernels.get();
        NDArray g;
        NDArray u;
        if (gateUp != null) {
            long ff = down.inFeatures();
            NDList parts = k.splitLast(gateUp.forward(x), ff, ff);
            g = parts.get(0);
            u = parts.get(1);
        } else {
            g = gate.forward(x);
            u = up.forward(x);
        }
        return down.forward(gelu ? k.gegluTanh(g, u) : k.swiglu(g, u));
    }

    /** The projections by their transformers module names under {@code mlp.}. */
    public Map<String, Linear> linears() {
        Map<String, Linear> m = new LinkedHashMap<>();
        if (gateUp != null) {
            m.put("gate_up_proj", gateUp);
        } else {
            m.put("gate_proj", gate);
            m.put("up_proj", up);
        }
        m.put("down_proj", down);
        return m;
    }

    public Linear gate() {
        return gate;
    }

    public Linear up() {
        return up;
    }

    /** Phi-3's fused gate/up projection, or null. */
    public Linear gateUp() {
        return gateUp;
    }

    public Linear down() {
        return down;
    }

    @Override
    public void close() {
        linears().values().forEach(Linear::close);
    }
}
