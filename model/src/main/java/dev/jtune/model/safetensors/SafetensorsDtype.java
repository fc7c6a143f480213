package dev.jtune.model.safetensors;

import java.util.Optional;

/**
 * The element types jtune reads and writes, named as in a safetensors header.
 *
 * <p>Declaration order mirrors the Rust crate's {@code Dtype} enum (increasing alignment). Writers sort tensors by
 * this order, descending, so the order is part of the file format; do not reorder.
 */
public enum SafetensorsDtype {
    U8(1),
    I8(1),
    F16(2),
    BF16(2),
    I32(4),
    F32(4),
    I64(8);

    private final int byteSize;

    SafetensorsDtype(int byteSize) {
        this.byteSize = byteSize;
    }

    /** Bytes per element. */
    public int byteSize() {
        return byteSize;
    }

    /** True for F32, F16 and BF16. */
    public boolean isFloatingPoint() {
        return this == F32 || this == F16 || this == BF16;
    }

    /** The dtype a header spells {@code name} (case-sensitive, as in the Rust crate), or empty if jtune has none. */
    public static Optional<SafetensorsDtype> fromHeaderName(String name) {
        for (SafetensorsDtype d : values()) {
            if (d.name().equals(name)) {
                return Optional.of(d);
            }
        }
        return Optional.empty();
    }
}
