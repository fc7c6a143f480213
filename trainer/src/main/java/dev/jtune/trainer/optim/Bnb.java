package dev.jtune.trainer.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * bitsandbytes' AdamW ({@code bitsandbytes.optim.AdamW}, as transformers creates it for {@code adamw_bnb_8bit},
 * {@code adamw_8bit}, {@code paged_adamw_8bit} with {@code optim_bits=8}, and {@code paged_adamw_32bit} with 32),
 * ported from bitsandbytes at commit 95f9af309d4d5793847169c39288dcd3fcbdf564 ({@code optim/optimizer.py}
 * {@code Optimizer2State}, {@code csrc/kernels.cu} {@code kOptimizerStatic8bit2StateBlockwise} and
 * {@code kOptimizer32bit2State}, {@code functional.py create_dynamic_map}).
 *
 * <p>With 8 bits, a tensor of at least {@link #MIN_8BIT_SIZE} elements keeps both moments as uint8 codes, blockwise
 * (blocks of {@link #BLOCK} elements from its first element, one fp32 absmax per block and moment): the first
 * moment in the signed dynamic map, the second in the unsigned one. Smaller tensors keep fp32 moments and take the
 * 32-bit kernel's update. Both kernels differ from {@code torch.optim.AdamW} in two places: {@code eps} is scaled
 * by {@code sqrt(1 - beta2^t)} and added before the division ({@code p += -lr*c2/c1 * m / (sqrt(v) + c2*eps)}),
 * and weight decay multiplies the parameter <em>after</em> the update. No percentile clipping, no max_unorm (the
 * defaults). Paging (the {@code paged_} names) only moves state between GPU and host memory: same update.
 *
 * <p>The CUDA kernels use fast intrinsics ({@code __fdividef}, {@code __powf}) and nvcc may contract multiply-adds;
 * jtune computes the same operations in the same order with correctly rounded fp32 arithmetic, so a code can differ
 * from a GPU run where a value falls within an ulp or two of a midpoint of the map.
 */
public final class Bnb {
    /** The block of the 8-bit state (bitsandbytes' {@code blocksize = 256} in {@code init_state}). */
    public static final int BLOCK = 256;
    /** bitsandbytes' {@code min_8bit_size} default: smaller tensors keep 32-bit state. */
    public static final long MIN_8BIT_SIZE = 4096;

    /**
     * Values updated at a time inside one tensor (a multiple of {@link #BLOCK}; blocks are independent): the update's
     * int64 indices and fp32 temporaries (some 100 bytes a value) stay about 100 MB for any tensor size, while each
     * of its ~150 small ops still covers enough values that libtorch's per-op threading overhead stays small.
     */
    static final int CHUNK = 1 << 20;

    private Bnb() {}

    /** Blocks of {@code n} elements: {@code ceil(n / 256)}. */
    public static long blocks(long n) {
        return (n + BLOCK - 1) / BLOCK;
    }

    /** Whether a tensor of {@code n} elements keeps 8-bit state under {@code optim_bits=8}. */
    public static boolean eightBit(long n) {
        return n >= MIN_8BIT_SIZE;
    }

    /** {@code create_dynamic_map(signed)}: the 256 sorted values, computed by libtorch as bitsandbytes does. */
    public static float[] dynamicMap(boolean signed, NDManager m) {
        try (NDArray map = OptimKernels.get().dynamicMap(signed, m)) {
            return map.toFloatArray();
        }
    }

    /**
     * The kernels' float32 scalars for step {@code step} (1-based), computed as the kernels compute them from the
     * float arguments that {@code ct.c_float} makes of the Python values.
     */
    record Scalars(float beta1, float beta2, float oneMinusBeta1, float oneMinusBeta2, float epsC2, float stepSize,
            float decay, boolean applyDecay) {
        static Scalars of(double beta1, double beta2, double eps, double lr, double weightDecay, long step) {
            float b1 = (float) beta1;
            float b2 = (float) beta2;
            float e = (float) eps;
            float l = (float) lr;
            float wd = (float) weightDecay;
            // powf and sqrtf of floats: double pow/sqrt rounded once to float.
            float correction1 = 1.0f - (float) Math.pow(b1, step);
            float correction2 = (float) Math.sqrt(1.0f - (float) Math.pow(b2, step));
            float stepSize = (-l * correction2) / correction1;
            return new Scalars(b1, b2, 1.0f - b1, 1.0f - b2, correction2 * e, stepSize, 1.0f - l * wd, wd > 0.0f);
        }
    }
}
