package dev.jtune.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.llama.Linear;
import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;

/**
 * A frozen base projection plus a low-rank update, as PEFT's {@code lora.Linear}:
 * {@code y = base(x) + B·A·dropout(x) · scaling}, with A [r, in] and B [out, r] fp32 and trainable.
 *
 * <p>The base may be any {@link Linear} (dense, NF4, ...), in any compute dtype. As in PEFT, x is cast to the
 * adapter's dtype (fp32) for the adapter path, the sum is taken in fp32 and the result cast back to the base
 * output's dtype. Dropout is active only in training mode ({@link #setTraining}); each mask's seed is one draw from
 * libtorch's global generator, so a trainer that seeds libtorch before each step (or layer) gets reproducible masks.
 * On CPU the mask comes from {@link DropoutMask} (a counter-based generator, ~10x faster than libtorch's
 * {@code bernoulli_}); the arithmetic is torch.dropout's bit for bit given that mask, keeping a bool mask for backward
 * where torch.dropout keeps its fp32 noise (5 instead of 8 bytes an input value kept per projection, with the fp32
 * input of A; 26 MiB a layer at 1.1B and 512 tokens). On CUDA it is torch.dropout.
 */
public final class LoraLinear implements Linear {
    private final Linear base;
    private final NDArray a;
    private final NDArray b;
    private final double scaling;
    private final double dropout;
    private volatile boolean training;

    /**
     * Wraps {@code base}, taking ownership of it and of {@code a} and {@code b}, which become trainable.
     *
     * @param a [r, in] fp32
     * @param b [out, r] fp32
     * @throws IllegalArgumentException if shapes disagree with the base or each other, or dtypes are not fp32
     */
    public LoraLinear(Linear base, NDArray a, NDArray b, double scaling, double dropout) {
        Shape sa = a.getShape();
        Shape sb = b.getShape();
        if (sa.dimension() != 2 || sb.dimension() != 2 || sa.get(0) != sb.get(1) || sa.get(1) != base.inFeatures()
                || sb.get(0) != base.outFeatures()) {
            throw new IllegalArgumentException("LoRA A " + sa + " and B " + sb + " do not fit a base projection of "
                    + base.inFeatures() + " -> " + base.outFeatures() + " (expected A [r, in], B [out, r])");
        }
        if (a.getDataType() != DataType.FLOAT32 || b.getDataType() != DataType.FLOAT32) {
            throw new IllegalArgumentException("LoRA A and B must be fp32, got " + a.getDataType() + " and "
                    + b.getDataType());
        }
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("dropout must be in [0, 1), got " + dropout);
        }
        this.base = base;
        this.a = a;
        this.b = b;
        this.scaling = scaling;
        this.dropout = dropout;
        a.setRequiresGradient(true);
        b.setRequiresGradient(true);
    }

    /**
     * A fresh adapter over {@code base}, initialised as PEFT's {@code reset_lora_parameters} with
     * {@code init_lora_weights=True}: A ~ U(-1/√in, 1/√in) (torch's {@code kaiming_uniform_(a=√5)}, whose
     * bound is √(6 / ((1 + a²) · fan_in)) = 1/√fan_in) and B = 0, so the wrapped projection starts equal to the
     * base.
     *
     * <p>A is drawn from a {@link SplittableRandom} seeded with {@link #moduleSeed(long, String)}: the values
     * depend only on the seed, the module name and the shape, never on the order modules are built in. They are
     * not torch's values for the same seed.
     *
     * @param manager where A and B live
     */
    public static LoraLinear initialise(Linear base, String name, int r, double scaling, double dropout, long seed,
            NDManager manager) {
        long in = base.inFeatures();
        float[] av = kaimingUniform(r, in, moduleSeed(seed, name));
        NDArray a = manager.create(av, new Shape(r, in));
        NDArray b = manager.zeros(new Shape(base.outFeatures(), r), DataType.FLOAT32);
        return new LoraLinear(base, a, b, scaling, dropout);
    }

    /**
     * The values {@link #initialise} gives A of module {@code name} under {@code seed} ([r, in], row-major), for a
     * re-initialisation in place (ReLoRA's restarts).
     */
    public static float[] initialA(long seed, String name, int r, long in) {
        return kaimingUniform(r, in, moduleSeed(seed, name));
    }

    /** A's initial values [rows, fanIn], row-major: uniform in [-1/√fanIn, 1/√fanIn). */
    static float[] kaimingUniform(int rows, long fanIn, long seed) {
        double bound = 1 / Math.sqrt(fanIn);
        SplittableRandom random = new SplittableRandom(seed);
        float[] v = new float[Math.toIntExact(rows * fanIn)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) ((2 * random.nextDouble() - 1) * bound);
        }
        return v;
    }

    /** The per-module seed: the run's seed mixed with a 64-bit FNV-1a hash of the module name. */
    public static long moduleSeed(long seed, String name) {
        long h = 0xcbf29ce484222325L;
        for (byte c : name.getBytes(StandardCharsets.UTF_8)) {
            h = (h ^ (c & 0xff)) * 0x100000001b3L;
        }
        return seed * 0x9E3779B97F4A7C15L + h;
    }

    @Override
    public NDArray forward(NDArray x) {
        NDArray baseOut = base.forward(x);
        NDArray y;
        if (training && dropout > 0 && !x.getDevice().isGpu()) {
            try (NDArray keep = DropoutMask.keep(x.getManager(), x.getShape(), dropout, LoraKernels.drawSeed(x))) {
                y = LoraKernels.loraForwardMasked(x, baseOut, a, b, keep, dropout, scaling);
            }
        } else {
            y = LoraKernels.loraForward(x, baseOut, a, b, dropout, training && dropout > 0, scaling);
        }
        baseOut.close();
        return y;
    }

    /** Training mode applies dropout; evaluation mode (the default) does not. */
    public void setTraining(boolean training) {
        this.training = training;
    }

    public boolean isTraining() {
        return training;
    }

    @Override
    public void prepareBackward() {
        base.prepareBackward();
    }

    /** The frozen base projection. */
    public Linear base() {
        return base;
    }

    /** A [r, in], fp32, trainable. */
    public NDArray loraA() {
        return a;
    }

    /** B [out, r], fp32, trainable. */
    public NDArray loraB() {
        return b;
    }

    public int rank() {
        return (int) a.getShape().get(0);
    }

    public double scaling() {
        return scaling;
    }

    public double dropout() {
        return dropout;
    }

    @Override
    public long inFeatures() {
        return base.inFeatures();
    }

    @Override
    public long outFeatures() {
        return base.outFeatures();
    }

    @Override
    public void close() {
        base.close();
        a.close();
        b.close();
    }
}
