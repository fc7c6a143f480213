package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;
import dev.jtune.model.engine.Kernels;

/** Llama's SwiGLU feed-forward block: {@code down(silu(gate(x)) * up(x))}. */
public final class Mlp implements AutoCloseable {
    private final Linear gate;
    private final Linear up;
    private final Linear down;

    public Mlp(Linear gate, Linear up, Linear down) {
        this.gate = gate;
        this.up = up;
        this.down = down;
    }

    /** [B,T,E] → [B,T,E]. */
    public NDArray forward(NDArray x) {
        return down.forward(Kernels.get().swiglu(gate.forward(x), up.forward(x)));
    }

    public Linear gate() {
        return gate;
    }

    public Linear up() {
        return up;
    }

    public Linear down() {
        return down;
    }

    @Override
    public void close() {
        gate.close();
        up.close();
        down.close();
    }
}
