package dev.jtune.trainer.setup;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.config.TrainerSettings;
import dev.jtune.data.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;

/**
 * Axolotl's DiffusionPlugin as a config asks for it ({@code plugins: [axolotl.integrations.diffusion.DiffusionPlugin]}
 * and the {@code diffusion:} block, {@code integrations/diffusion/args.py} {@code DiffusionConfig} at 067b021), read
 * and validated as its pydantic model validates it, and the mask token resolved as its {@code resolve_mask_token_id}
 * resolves it. Every sub-key has a policy:
 *
 * <ul>
 *   <li>implemented: {@code eps}, {@code importance_weighting}, {@code mask_token_id}, {@code mask_token_str}
 *       ({@code dev.jtune.trainer.train.Diffusion});</li>
 *   <li>validated and, as in Axolotl's trainer, unused: {@code noise_schedule}, {@code min_mask_ratio},
 *       {@code max_mask_ratio}, {@code num_diffusion_steps} (its forward process draws {@code t ~ U[0,1)} and masks
 *       with {@code (1 - eps) t + eps} whatever they say);</li>
 *   <li>not produced: {@code generate_samples} (on by default), {@code generation_interval},
 *       {@code num_generation_samples}, {@code generation_steps}, {@code generation_temperature},
 *       {@code generation_max_length}: Axolotl's callback prints reverse-diffusion samples every
 *       {@code generation_interval} steps, a report that changes no weight; jtune prints none.</li>
 * </ul>
 *
 * An unknown sub-key is refused (pydantic would drop it silently), and so is a {@code diffusion:} block without the
 * plugin, which Axolotl would not read.
 *
 * @param eps {@code eps}, default 1e-3
 * @param importanceWeighting {@code importance_weighting}, default true
 * @param maskTokenId {@code mask_token_id}, or empty
 * @param maskTokenStr {@code mask_token_str}, or empty
 */
public record DiffusionSettings(double eps, boolean importanceWeighting, OptionalInt maskTokenId,
        Optional<String> maskTokenStr) {
    /** The plugin's name in {@code plugins:}. */
    public static final String PLUGIN = "axolotl.integrations.diffusion.DiffusionPlugin";
    /** The token Axolotl adds when no configured one resolves. */
    public static final String DEFAULT_MASK_TOKEN = "<|diffusion_mask|>";
    /** DiffusionConfig's fields. */
    static final List<String> KEYS = List.of("noise_schedule", "min_mask_ratio", "max_mask_ratio",
            "num_diffusion_steps", "eps", "importance_weighting", "mask_token_id", "mask_token_str", "generate_samples",
            "generation_interval", "num_generation_samples", "generation_steps", "generation_temperature",
            "generation_max_length");

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Whether {@code plugins:} lists the DiffusionPlugin. */
    public static boolean enabled(TrainerSettings s) {
        return s.value("plugins").map(v -> v instanceof List<?> l ? l : List.of(v)).orElse(List.of()).stream()
                .anyMatch(p -> PLUGIN.equals(String.valueOf(p)));
    }

    /** The settings, or empty without the plugin; {@link #problems} must be empty. */
    public static Optional<DiffusionSettings> from(TrainConfig config) {
        KeyProblem.throwIfAny(config, problems(config));
        TrainerSettings s = config.trainer();
        if (!enabled(s)) {
            return Optional.empty();
        }
        Map<String, Object> d = s.mapping("diffusion");
        double eps = d.get("eps") instanceof Number n ? n.doubleValue() : 1e-3;
        boolean importance = !(d.get("importance_weighting") instanceof Boolean b) || b;
        OptionalInt id = d.get("mask_token_id") instanceof Number n ? OptionalInt.of(n.intValue()) : OptionalInt.empty();
        Optional<String> str = d.get("mask_token_str") instanceof String t ? Optional.of(t) : Optional.empty();
        return Optional.of(new DiffusionSettings(eps, importance, id, str));
    }

    /** Every problem of the {@code diffusion:} block and the plugin, each at its key, for ConfigChecks. */
    public static List<KeyProblem> problems(TrainConfig config) {
        TrainerSettings s = config.trainer();
        List<KeyProblem> out = new ArrayList<>();
        Map<String, Object> d = s.mapping("diffusion");
        if (!enabled(s)) {
            if (!d.isEmpty()) {
                out.add(new KeyProblem("diffusion", "diffusion: is read by Axolotl's DiffusionPlugin only: add plugins: ["
                        + PLUGIN + "] to train with the diffusion objective, or drop the block"));
            }
            return out;
        }
        for (var e : d.entrySet()) {
            String key = e.getKey();
            Object v = e.getValue();
            String at = "diffusion." + key;
            if (!KEYS.contains(key)) {
                out.add(new KeyProblem(at, at + " is not a key of Axolotl's DiffusionConfig; its keys: "
                        + String.join(", ", KEYS)));
                continue;
            }
            if (v == null) continue; // unset: the default
            switch (key) {
                case "noise_schedule" -> {
                    if (!List.of("linear", "cosine").contains(String.valueOf(v))) {
                        out.add(new KeyProblem(at, at + ": expected linear or cosine, got '" + v + "'"));
                    }
                }
                case "min_mask_ratio", "max_mask_ratio", "eps" -> range(out, at, v, 0.0, 1.0);
                case "generation_temperature" -> range(out, at, v, 0.0, Double.POSITIVE_INFINITY);
                case "num_diffusion_steps", "generation_interval", "num_generation_samples", "generation_steps",
                        "generation_max_length" -> {
                    if (!(v instanceof Long || v instanceof Integer) || ((Number) v).longValue() < 1) {
                        out.add(new KeyProblem(at, at + ": expected a whole number of at least 1, got '" + v + "'"));
                    }
                }
                case "importance_weighting", "generate_samples" -> {
                    if (!(v instanceof Boolean)) out.add(new KeyProblem(at, at + ": expected true or false, got '" + v + "'"));
                }
                case "mask_token_id" -> {
                    if (!(v instanceof Long || v instanceof Integer)) {
                        out.add(new KeyProblem(at, at + ": expected a token id (a whole number), got '" + v + "'"));
                    }
                }
                case "mask_token_str" -> {
                    if (!(v instanceof String t) || t.isEmpty()) {
                        out.add(new KeyProblem(at, at + ": expected a token (a non-empty string), got '" + v + "'"));
                    }
                }
                default -> throw new AssertionError(key);
            }
        }
        double min = d.get("min_mask_ratio") instanceof Number n ? n.doubleValue() : 0.1;
        double max = d.get("max_mask_ratio") instanceof Number n ? n.doubleValue() : 0.9;
        if (min > max) {
            out.add(new KeyProblem("diffusion.min_mask_ratio", "diffusion: min_mask_ratio (" + min
                    + ") must be <= max_mask_ratio (" + max + "), as Axolotl's DiffusionConfig requires"));
        }
        return out;
    }

    private static void range(List<KeyProblem> out, String at, Object v, double lo, double hi) {
        if (!(v instanceof Number n) || !(n.doubleValue() >= lo && n.doubleValue() <= hi)) {
            out.add(new KeyProblem(at, at + ": expected a number in [" + lo + ", " + (hi == Double.POSITIVE_INFINITY
                    ? "inf)" : hi + "]") + ", got '" + v + "'"));
        }
    }

    /** How the mask token resolves against the run's tokenizer, before training. */
    public sealed interface MaskToken {
        /** An id the tokenizer has (Axolotl's configured id, or an existing special token). */
        record Existing(int id) implements MaskToken {}

        /** A token to add (and the embedding to grow to the tokenizer's new size), then used. */
        record Add(String token) implements MaskToken {}
    }

    /**
     * Axolotl's {@code resolve_mask_token_id} (allow_add=True): {@code mask_token_id} when it is below the
     * tokenizer's {@code vocab_size}, which transformers counts without the added tokens (so Llama 3's reserved
     * special tokens, ids from 128000, never qualify: Axolotl then adds its own token); else {@code mask_token_str}
     * and then {@code <|diffusion_mask|>}, each when it is an existing special token below that size; else
     * {@code mask_token_str} or {@code <|diffusion_mask|>} is added.
     *
     * @param tokenizerDir the tokenizer folder before the run's edits (its tokenizer.json)
     */
    public MaskToken resolve(Path tokenizerDir) {
        JsonNode tj = read(tokenizerDir.resolve(Tokenizer.TOKENIZER_JSON));
        int base = baseVocabSize(tj);
        if (maskTokenId.isPresent() && maskTokenId.getAsInt() >= 0 && maskTokenId.getAsInt() < base) {
            return new MaskToken.Existing(maskTokenId.getAsInt());
        }
        Set<String> candidates = new LinkedHashSet<>();
        maskTokenStr.ifPresent(candidates::add);
        candidates.add(DEFAULT_MASK_TOKEN);
        for (String c : candidates) {
            for (JsonNode added : tj.path("added_tokens")) {
                if (c.equals(added.path("content").asText()) && added.path("special").asBoolean(false)
                        && added.path("id").asInt(-1) >= 0 && added.path("id").asInt() < base) {
                    return new MaskToken.Existing(added.path("id").asInt());
                }
            }
        }
        return new MaskToken.Add(maskTokenStr.orElse(DEFAULT_MASK_TOKEN));
    }

    /**
     * The run's vocabulary edits with the mask token added when it {@link #resolve}s to {@link MaskToken.Add}; the
     * same edits otherwise, or without the plugin. {@code preprocess} and {@code train} both use it, so the data is
     * tokenized by the tokenizer that trains.
     *
     * @param sourceTokenizerDir the tokenizer folder before the run's edits
     */
    public static VocabSettings vocab(TrainConfig config, VocabSettings vocab, Path sourceTokenizerDir) {
        Optional<DiffusionSettings> d = from(config);
        if (d.isPresent() && d.get().resolve(sourceTokenizerDir) instanceof MaskToken.Add add) {
            return vocab.adding(add.token());
        }
        return vocab;
    }

    /**
     * The mask token's id in the run's tokenizer (after its edits, which hold an added mask token).
     *
     * @param sourceTokenizerDir the tokenizer folder before the run's edits
     */
    public int maskTokenId(Path sourceTokenizerDir, Tokenizer runTokenizer) {
        return switch (resolve(sourceTokenizerDir)) {
            case MaskToken.Existing e -> e.id();
            case MaskToken.Add a -> runTokenizer.tokenToId(a.token()).orElseThrow(() -> new IllegalStateException(
                    "the mask token " + a.token() + " was not added to " + runTokenizer.directory()));
        };
    }

    /**
     * The objective for the run: Axolotl's {@code _cache_special_token_ids} (bos, eos and pad ids that the tokenizer
     * has are never masked) and the resolved mask token.
     */
    public dev.jtune.trainer.train.Diffusion objective(Path sourceTokenizerDir, Tokenizer runTokenizer, long seed) {
        Set<Integer> special = new java.util.HashSet<>();
        runTokenizer.bosId().ifPresent(special::add);
        runTokenizer.eosId().ifPresent(special::add);
        runTokenizer.padId().ifPresent(special::add);
        return new dev.jtune.trainer.train.Diffusion(eps, importanceWeighting, maskTokenId(sourceTokenizerDir,
                runTokenizer), special, dev.jtune.trainer.train.DiffusionDraw.seeded(seed));
    }

    /** transformers' {@code vocab_size} of a fast tokenizer: the model's vocabulary without the added tokens. */
    static int baseVocabSize(JsonNode tokenizerJson) {
        JsonNode vocab = tokenizerJson.path("model").path("vocab");
        return vocab.size();
    }

    private static JsonNode read(Path file) {
        try {
            return JSON.readTree(Files.readString(file));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + " (the diffusion mask token is resolved against it)",
                    e);
        }
    }
}
