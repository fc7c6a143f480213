package dev.jtune.quant;

import ai.djl.ndarray.NDArray;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.Linear;
import dev.jtune.model.llama.LlamaModel.LinearFactory;
import java.util.function.Predicate;

/**
 * bitsandbytes' NF4 constants and the QLoRA entry point {@link #linearFactory}.
 *
 * <p>Sources transcribed (bitsandbytes-foundation/bitsandbytes, main at 95f9af3):
 * {@code bitsandbytes/functional.py} {@code get_4bit_type("nf4")} (the 16 values, divided by their max |v| = 1) and
 * {@code create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)} (the 256-value map of the nested
 * absmax quantization).
 */
public final class Nf4 {
    /** QLoRA's NF4 block size: one absmax per 64 weights ({@code quantize_4bit} default). */
    public static final int BLOCKSIZE = 64;

    /** The nested block size: {@code quantize_4bit(compress_statistics=True)} calls {@code quantize_blockwise(..., blocksize=256)}. */
    public static final int NESTED_BLOCKSIZE = 256;

    // get_4bit_type("nf4"): these decimal strings are the exact float32 values (17 significant digits).
    private static final float[] NF4 = {
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    };

    /*
     * create_dynamic_map() as evaluated by torch 1.13 (tools/reference/nf4_reference.py prints it): float32 bit
     * patterns, sorted ascending; index 127 is 0.0 and 255 is 1.0. Hard-coded because the map goes through
     * torch.linspace, whose float rounding we do not reimplement; a checkpoint carries its own copy
     * (nested_quant_map), which is what dequantization uses.
     */
    private static final int[] DYNAMIC_MAP_BITS = {
            0xbf7e3333, 0xbf7a9999, 0xbf770000, 0xbf736666, 0xbf6fcccc, 0xbf6c3333, 0xbf68999a, 0xbf650000,
            0xbf616666, 0xbf5dcccc, 0xbf5a3333, 0xbf569999, 0xbf530000, 0xbf4f6666, 0xbf4bcccc, 0xbf483333,
            0xbf44999a, 0xbf410000, 0xbf3d6667, 0xbf39cccd, 0xbf363334, 0xbf32999a, 0xbf2f0000, 0xbf2b6667,
            0xbf27cccd, 0xbf243333, 0xbf20999a, 0xbf1d0000, 0xbf196666, 0xbf15cccd, 0xbf123334, 0xbf0e999a,
            0xbf0b0000, 0xbf076666, 0xbf03cccd, 0xbf003333, 0xbef93334, 0xbef20000, 0xbeeacccc, 0xbee3999a,
            0xbedc6666, 0xbed53332, 0xbece0000, 0xbec6cccc, 0xbebf999a, 0xbeb86666, 0xbeb13332, 0xbeaa0000,
            0xbea2cccc, 0xbe9b999a, 0xbe946666, 0xbe8d3334, 0xbe860000, 0xbe7d999a, 0xbe6f3334, 0xbe60cccd,
            0xbe526666, 0xbe440000, 0xbe359999, 0xbe273333, 0xbe18cccd, 0xbe0a6666, 0xbdf80000, 0xbddb3334,
            0xbdc9eb85, 0xbdc428f5, 0xbdbe6667, 0xbdb8a3d7, 0xbdb2e148, 0xbdad1eb8, 0xbda75c28, 0xbda1999a,
            0xbd9bd70a, 0xbd96147b, 0xbd9051eb, 0xbd8a8f5d, 0xbd84cccd, 0xbd7e147a, 0xbd728f5d, 0xbd670a3d,
            0xbd5b851f, 0xbd500000, 0xbd447ae1, 0xbd38f5c3, 0xbd2d70a3, 0xbd21eb85, 0xbd166667, 0xbd0ae147,
            0xbcfeb852, 0xbce7ae13, 0xbcd0a3d7, 0xbcb9999a, 0xbca28f5c, 0xbc8b851f, 0xbc68f5c3, 0xbc3ae148,
            0xbc1f3b64, 0xbc160418, 0xbc0ccccd, 0xbc039581, 0xbbf4bc6a, 0xbbe24dd3, 0xbbcfdf3b, 0xbbbd70a4,
            0xbbab020d, 0xbb989374, 0xbb8624dd, 0xbb676c8a, 0xbb428f5c, 0xbb1db22d, 0xbaf1a9fc, 0xbaa7ef9d,
            0xba7765ff, 0xba59e83e, 0xba3c6a80, 0xba1eecc1, 0xba016f01, 0xb9c7e283, 0xb98ce705, 0xb923d70b,
            0xb8ba1f4b, 0xb88aefb3, 0xb8378034, 0xb7b24206, 0xb70205ff, 0xb65a1a94, 0xb513a3b7, 0x00000000,
            0x3513a3b7, 0x365a1a94, 0x370205ff, 0x37b24206, 0x38378034, 0x388aefb3, 0x38ba1f4b, 0x3923d70b,
            0x398ce705, 0x39c7e283, 0x3a016f01, 0x3a1eecc1, 0x3a3c6a80, 0x3a59e83e, 0x3a7765ff, 0x3aa7ef9d,
            0x3af1a9fc, 0x3b1db22d, 0x3b428f5c, 0x3b676c8a, 0x3b8624dd, 0x3b989374, 0x3bab020d, 0x3bbd70a4,
            0x3bcfdf3b, 0x3be24dd3, 0x3bf4bc6a, 0x3c039581, 0x3c0ccccd, 0x3c160418, 0x3c1f3b64, 0x3c3ae148,
            0x3c68f5c3, 0x3c8b851f, 0x3ca28f5c, 0x3cb9999a, 0x3cd0a3d7, 0x3ce7ae13, 0x3cfeb852, 0x3d0ae147,
            0x3d166667, 0x3d21eb85, 0x3d2d70a3, 0x3d38f5c3, 0x3d447ae1, 0x3d500000, 0x3d5b851f, 0x3d670a3d,
            0x3d728f5d, 0x3d7e147a, 0x3d84cccd, 0x3d8a8f5d, 0x3d9051eb, 0x3d96147b, 0x3d9bd70a, 0x3da1999a,
            0x3da75c28, 0x3dad1eb8, 0x3db2e148, 0x3db8a3d7, 0x3dbe6667, 0x3dc428f5, 0x3dc9eb85, 0x3ddb3334,
            0x3df80000, 0x3e0a6666, 0x3e18cccd, 0x3e273333, 0x3e359999, 0x3e440000, 0x3e526666, 0x3e60cccd,
            0x3e6f3334, 0x3e7d999a, 0x3e860000, 0x3e8d3334, 0x3e946666, 0x3e9b999a, 0x3ea2cccc, 0x3eaa0000,
            0x3eb13332, 0x3eb86666, 0x3ebf999a, 0x3ec6cccc, 0x3ece0000, 0x3ed53332, 0x3edc6666, 0x3ee3999a,
            0x3eeacccc, 0x3ef20000, 0x3ef93334, 0x3f003333, 0x3f03cccd, 0x3f076666, 0x3f0b0000, 0x3f0e999a,
            0x3f123334, 0x3f15cccd, 0x3f196666, 0x3f1d0000, 0x3f20999a, 0x3f243333, 0x3f27cccd, 0x3f2b6667,
            0x3f2f0000, 0x3f32999a, 0x3f363334, 0x3f39cccd, 0x3f3d6667, 0x3f410000, 0x3f44999a, 0x3f483333,
            0x3f4bcccc, 0x3f4f6666, 0x3f530000, 0x3f569999, 0x3f5a3333, 0x3f5dcccc, 0x3f616666, 0x3f650000,
            0x3f68999a, 0x3f6c3333, 0x3f6fcccc, 0x3f736666, 0x3f770000, 0x3f7a9999, 0x3f7e3333, 0x3f800000
    };

    private Nf4() {}

    /** The 16 NF4 values, ascending (a fresh copy). */
    public static float[] nf4Table() {
        return NF4.clone();
    }

    /** bitsandbytes' signed 8-bit dynamic map, 256 values ascending (a fresh copy). */
    public static float[] dynamicMap() {
        float[] out = new float[256];
        for (int i = 0; i < 256; i++) {
            out[i] = Float.intBitsToFloat(DYNAMIC_MAP_BITS[i]);
        }
        return out;
    }

    /** The default choice of layers to quantize: every linear except {@code lm_head}, as bitsandbytes skips it. */
    public static boolean isBaseLinear(String name) {
        return !(name.equals("lm_head") || name.endsWith(".lm_head") || name.contains("embed_tokens"));
    }

    /** {@link #linearFactory(Predicate)} with {@link #isBaseLinear}. */
    public static LinearFactory linearFactory() {
        return linearFactory(Nf4::isBaseLinear);
    }

    /**
     * A factory for {@link dev.jtune.model.llama.LlamaModel#load} that quantizes the linears whose names
     * {@code quantize} accepts to NF4 (blocksize 64, double quantization) and keeps the others dense. The dense
     * weight of a quantized layer is closed once quantized; the {@link Nf4Linear} dequantizes to the dtype the
     * weight arrived in, into the {@link Nf4Linear.SharedBuffers} of the model this factory builds (one factory a model).
     */
    public static LinearFactory linearFactory(Predicate<String> quantize) {
        return linearFactory(quantize, new Nf4Linear.SharedBuffers());
    }

    /** As {@link #linearFactory(Predicate)}; {@code shared} null dequantizes into a weight per call (tests compare). */
    static LinearFactory linearFactory(Predicate<String> quantize, Nf4Linear.SharedBuffers shared) {
        return new LinearFactory() {
            @Override
            public Linear create(String name, NDArray weight) {
                if (!quantize.test(name)) {
                    return new DenseLinear(weight);
                }
                Nf4Tensor q;
                ai.djl.ndarray.NDManager parent = weight.getManager();
                try (weight) {
                    Dtype dtype = Kernels.get().dtypeOf(weight);
                    if (dtype == null) {
                        throw new IllegalArgumentException(name + ": weight is not fp32, fp16 or bf16");
                    }
                    q = Nf4Quantizer.quantize(floats(weight, dtype), weight.getShape().getShape(), dtype);
                }
                return new Nf4Linear(q, parent, shared, name);
            }

            /** Quantizes the checkpoint's values directly: no dense weight is made in native memory. */
            @Override
            public Linear createFromValues(String name, long out, long in, java.util.function.Supplier<float[]> values,
                    Dtype dtype, ai.djl.ndarray.NDManager manager) {
                if (!quantize.test(name)) {
                    return null;
                }
                return new Nf4Linear(Nf4Quantizer.quantize(values.get(), new long[] {out, in}, dtype), manager, shared,
                        name);
            }
        };
    }

    /** The tensor's values widened exactly to float (bf16 leaves libtorch only through the cast kernel). */
    static float[] floats(NDArray weight, Dtype dtype) {
        if (dtype == Dtype.FP32) {
            return weight.toFloatArray();
        }
        try (NDArray fp32 = Kernels.get().cast(weight, Dtype.FP32)) {
            return fp32.toFloatArray();
        }
    }
}
