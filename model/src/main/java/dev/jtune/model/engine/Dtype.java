package dev.jtune.model.engine;

import java.util.Locale;

/**
 * The floating-point dtypes jtune computes in, with libtorch's ScalarType codes.
 *
 * <p>DJL cannot name bfloat16 (creating or casting to it aborts the JVM), so every cast goes through
 * {@link Kernels#cast} with these codes, never through {@code NDArray.toType}.
 */
public enum Dtype {
    FP32(6),
    FP16(5),
    BF16(15);

    private final int torchCode;

    Dtype(int torchCode) {
        this.torchCode = torchCode;
    }

    /** libtorch's ScalarType code. */
    public int torchCode() {
        return torchCode;
    }

    /** Bytes per element. */
    public int bytes() {
        return this == FP32 ? 4 : 2;
    }

    /** Lower-case name as used in configs and on the command line: fp32, fp16, bf16. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * Parses {@code fp32|fp16|bf16} (also {@code float32|float16|bfloat16}, as in config.json's
     * {@code torch_dtype}).
     *
     * @throws IllegalArgumentException naming the allowed values
     */
    public static Dtype parse(String s) {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "fp32", "float32", "float" -> FP32;
            case "fp16", "float16", "half" -> FP16;
            case "bf16", "bfloat16" -> BF16;
            default -> throw new IllegalArgumentException(
                    "unsupported dtype '" + s + "': expected fp32, fp16 or bf16");
        };
    }

    /** The dtype with this ScalarType code, or null if it is not one of these three. */
    public static Dtype ofTorchCode(int code) {
        for (Dtype d : values()) {
            if (d.torchCode == code) {
                return d;
            }
        }
        return null;
    }
}
