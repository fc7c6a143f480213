package dev.jtune.quant;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsFile;
import dev.jtune.model.safetensors.SafetensorsWriter.Entry;
import dev.jtune.model.safetensors.TensorInfo;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * bitsandbytes' 4-bit checkpoint layout: the tensors a {@code Linear4bit} with double quantization saves under its
 * weight name {@code X.weight}, as transformers writes them to safetensors.
 *
 * <p>Transcribed from bitsandbytes {@code functional.QuantState.as_dict(packed=True)} / {@code from_dict} and
 * {@code utils.pack_dict_to_tensor} (main at 95f9af3): {@code X.weight} U8 [(n+1)/2, 1] packed codes,
 * {@code X.weight.absmax} U8 [blocks], {@code X.weight.quant_map} F32 [16], {@code X.weight.nested_absmax} F32,
 * {@code X.weight.nested_quant_map} F32 [256], and {@code X.weight.quant_state.bitsandbytes__nf4}, U8 bytes of
 * {@code json.dumps({"quant_type", "blocksize", "dtype", "shape", "nested_blocksize", "nested_dtype",
 * "nested_offset"})} (Python's default separators; dtypes without the {@code torch.} prefix; the offset as Python's
 * {@code repr} of the fp32 value).
 */
public final class Bnb4bitLayout {
    /** The packed quant-state key suffix after {@code X.weight.}. */
    public static final String QUANT_STATE = "quant_state.bitsandbytes__nf4";

    private static final ObjectMapper JSON = new ObjectMapper();

    private Bnb4bitLayout() {}

    /** Whether {@code file} holds {@code module} ({@code model.layers.0.mlp.up_proj}) in bitsandbytes NF4 layout. */
    public static boolean isNf4(SafetensorsFile file, String module) {
        return file.contains(module + ".weight." + QUANT_STATE);
    }

    /** The six entries bitsandbytes saves for {@code module}'s weight, in the order {@code as_dict} lists them. */
    public static List<Entry> entries(String module, Nf4Tensor t) {
        String w = module + ".weight";
        byte[] state = quantStateJson(t).getBytes(StandardCharsets.UTF_8);
        List<Entry> out = new ArrayList<>();
        out.add(Entry.ofBytes(w, SafetensorsDtype.U8, new long[] {t.packed().length, 1}, t.packed()));
        out.add(Entry.ofBytes(w + ".absmax", SafetensorsDtype.U8, new long[] {t.blocks()}, t.absmaxCodes()));
        out.add(Entry.ofFloats(w + ".quant_map", new long[] {16}, t.quantMap(), SafetensorsDtype.F32));
        out.add(Entry.ofFloats(w + ".nested_absmax", new long[] {t.nestedAbsmax().length}, t.nestedAbsmax(),
                SafetensorsDtype.F32));
        out.add(Entry.ofFloats(w + ".nested_quant_map", new long[] {256}, t.nestedQuantMap(), SafetensorsDtype.F32));
        out.add(Entry.ofBytes(w + "." + QUANT_STATE, SafetensorsDtype.U8, new long[] {state.length}, state));
        return out;
    }

    /** The JSON text {@code pack_dict_to_tensor} stores, byte for byte as Python's {@code json.dumps} writes it. */
    public static String quantStateJson(Nf4Tensor t) {
        StringBuilder shape = new StringBuilder("[");
        long[] s = t.shape();
        for (int i = 0; i < s.length; i++) {
            shape.append(i == 0 ? "" : ", ").append(s[i]);
        }
        shape.append(']');
        return "{\"quant_type\": \"nf4\", \"blocksize\": " + t.blocksize() + ", \"dtype\": \"" + torchName(t.dtype())
                + "\", \"shape\": " + shape + ", \"nested_blocksize\": " + t.nestedBlocksize()
                + ", \"nested_dtype\": \"float32\", \"nested_offset\": " + pythonRepr(t.offset()) + "}";
    }

    /**
     * Reads {@code module}'s NF4 weight.
     *
     * @throws Bnb4bitFormatException naming the file and key when a tensor is missing, has the wrong dtype or size, or
     *     the quant state is not NF4 with double quantization
     */
    public static Nf4Tensor read(SafetensorsFile file, String module) {
        String w = module + ".weight";
        String stateKey = w + "." + QUANT_STATE;
        JsonNode state = parseState(file, stateKey);
        String quantType = text(file, stateKey, state, "quant_type");
        if (!quantType.equals("nf4")) {
            throw error(file, stateKey, "quant_type is '" + quantType + "'; jtune reads nf4 only");
        }
        if (state.get("nested_offset") == null || !file.contains(w + ".nested_absmax")) {
            throw error(file, stateKey, "no nested_offset/nested_absmax: jtune reads bitsandbytes NF4 with double"
                    + " quantization (bnb_4bit_use_double_quant=True) only");
        }
        int blocksize = integer(file, stateKey, state, "blocksize");
        int nestedBlocksize = integer(file, stateKey, state, "nested_blocksize");
        Dtype dtype = dtype(file, stateKey, text(file, stateKey, state, "dtype"));
        String nestedDtype = text(file, stateKey, state, "nested_dtype");
        if (!nestedDtype.equals("float32")) {
            throw error(file, stateKey, "nested_dtype is '" + nestedDtype + "', expected float32");
        }
        JsonNode shapeNode = state.get("shape");
        if (shapeNode == null || !shapeNode.isArray()) {
            throw error(file, stateKey, "shape must be a list of integers");
        }
        long[] shape = new long[shapeNode.size()];
        for (int i = 0; i < shape.length; i++) {
            if (!shapeNode.get(i).canConvertToLong() || !shapeNode.get(i).isIntegralNumber()) {
                throw error(file, stateKey, "shape must be a list of integers, got " + shapeNode);
            }
            shape[i] = shapeNode.get(i).longValue();
        }
        JsonNode offsetNode = state.get("nested_offset");
        if (!offsetNode.isNumber()) {
            throw error(file, stateKey, "nested_offset must be a number, got " + offsetNode);
        }
        // from_dict: torch.tensor(float(nested_offset)) is fp32.
        float offset = (float) offsetNode.doubleValue();

        byte[] packed = u8(file, w);
        byte[] codes = u8(file, w + ".absmax");
        float[] quantMap = f32(file, w + ".quant_map");
        float[] nested = f32(file, w + ".nested_absmax");
        float[] nestedMap = f32(file, w + ".nested_quant_map");
        try {
            return new Nf4Tensor(shape, dtype, blocksize, packed, codes, nestedBlocksize, nested, offset, quantMap,
                    nestedMap);
        } catch (IllegalArgumentException | ArithmeticException e) {
            throw error(file, w, "inconsistent with " + stateKey + " (shape " + Arrays.toString(shape)
                    + ", blocksize " + blocksize + "): " + e.getMessage());
        }
    }

    private static JsonNode parseState(SafetensorsFile file, String key) {
        if (!file.contains(key)) {
            throw error(file, key, "missing (not a bitsandbytes NF4 weight)");
        }
        requireDtype(file, key, SafetensorsDtype.U8);
        JsonNode node;
        try {
            node = JSON.readTree(new String(file.bytes(key), StandardCharsets.UTF_8));
        } catch (JacksonException e) {
            throw error(file, key, "is not JSON: " + e.getOriginalMessage());
        }
        if (node == null || !node.isObject()) {
            throw error(file, key, "is not a JSON object");
        }
        return node;
    }

    private static String text(SafetensorsFile file, String key, JsonNode state, String field) {
        JsonNode v = state.get(field);
        if (v == null || !v.isTextual()) {
            throw error(file, key, field + " must be a string");
        }
        return v.textValue();
    }

    private static int integer(SafetensorsFile file, String key, JsonNode state, String field) {
        JsonNode v = state.get(field);
        if (v == null || !v.isIntegralNumber() || !v.canConvertToInt() || v.intValue() <= 0) {
            throw error(file, key, field + " must be a positive integer, got " + v);
        }
        return v.intValue();
    }

    private static Dtype dtype(SafetensorsFile file, String key, String name) {
        return switch (name) {
            case "float32" -> Dtype.FP32;
            case "float16" -> Dtype.FP16;
            case "bfloat16" -> Dtype.BF16;
            default -> throw error(file, key, "dtype '" + name + "' is not float32, float16 or bfloat16");
        };
    }

    private static String torchName(Dtype d) {
        return switch (d) {
            case FP32 -> "float32";
            case FP16 -> "float16";
            case BF16 -> "bfloat16";
        };
    }

    private static byte[] u8(SafetensorsFile file, String key) {
        requireDtype(file, key, SafetensorsDtype.U8);
        return file.bytes(key);
    }

    private static float[] f32(SafetensorsFile file, String key) {
        requireDtype(file, key, SafetensorsDtype.F32);
        return file.floats(key);
    }

    private static void requireDtype(SafetensorsFile file, String key, SafetensorsDtype expected) {
        if (!file.contains(key)) {
            throw error(file, key, "missing");
        }
        TensorInfo info = file.info(key);
        if (info.dtype() != expected) {
            throw error(file, key, "is " + info.dtype() + ", expected " + expected);
        }
    }

    private static Bnb4bitFormatException error(SafetensorsFile file, String key, String problem) {
        return new Bnb4bitFormatException(file.path() + ": tensor '" + key + "' " + problem);
    }

    /** Python's {@code repr(float(f))}: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
    static String pythonRepr(float f) {
        double d = f;
        if (d == 0) {
            return (Double.doubleToRawLongBits(d) < 0) ? "-0.0" : "0.0";
        }
        // Double.toString gives the shortest digits that round-trip (JDK 19+), as Python's repr does.
        BigDecimal bd = new BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros();
        String digits = bd.unscaledValue().toString();
        int decpt = digits.length() - bd.scale(); // value = 0.digits * 10^decpt
        String sign = d < 0 ? "-" : "";
        int exp = decpt - 1;
        if (exp < -4 || exp >= 16) {
            String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
            String e = String.valueOf(Math.abs(exp));
            return sign + mantissa + "e" + (exp < 0 ? "-" : "+") + (e.length() < 2 ? "0" + e : e);
        }
        if (decpt <= 0) {
            return sign + "0." + "0".repeat(-decpt) + digits;
        }
        if (decpt >= digits.length()) {
            return sign + digits + "0".repeat(decpt - digits.length()) + ".0";
        }
        return sign + digits.substring(0, decpt) + "." + digits.substring(decpt);
    }
}
