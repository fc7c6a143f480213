package dev.jtune.model.generate;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.llama.KvCache;
import dev.jtune.model.llama.LlamaModel;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import java.util.function.IntConsumer;

/**
 * Autoregressive generation for one sequence: the prompt is run once (prefill) into a {@link KvCache}, then
 * each new token alone; the next token is chosen by a {@link Sampler} from the last position's logits (cast
 * to fp32), and generation ends at a stop token or after {@code max_new_tokens}.
 *
 * <p>Each step's tensors live in a sub-manager closed at the end of the step; the cache lives for one call.
 */
public final class Generator implements AutoCloseable {
    private final LlamaModel model;
    private final NDManager manager;
    private final CachedDecoder decoder;

    /** @param parent holds the generator's own memory (rotary tables, caches) until {@link #close()} */
    public Generator(LlamaModel model, NDManager parent) {
        this.model = model;
        this.manager = parent.newSubManager();
        this.decoder = new CachedDecoder(model);
    }

    /** {@link #generate(int[], GenerationSettings, KvCache.Layout, IntConsumer)} with a preallocated cache. */
    public Generation generate(int[] prompt, GenerationSettings settings, IntConsumer onToken) {
        return generate(prompt, settings, KvCache.Layout.PREALLOCATED, onToken);
    }

    /**
     * Generates after {@code prompt}.
     *
     * @param prompt token ids, at least one (usually starting with BOS)
     * @param onToken called with each new token as soon as it is chosen (the stop token too), or null
     */
    public Generation generate(int[] prompt, GenerationSettings settings, KvCache.Layout layout, IntConsumer onToken) {
        checkPrompt(prompt);
        Sampler sampler = new Sampler(settings);
        Set<Integer> stop = new HashSet<>(settings.stopTokenIds());
        int[] out = new int[settings.maxNewTokens()];
        int produced = 0;
        long capacity = (long) prompt.length + settings.maxNewTokens();
        try (KvCache cache = layout == KvCache.Layout.PREALLOCATED
                ? KvCache.preallocated(model.config(), model.dtype(), 1, capacity, manager)
                : KvCache.concatenated(model.config(), model.dtype(), 1, manager)) {
            int[] input = prompt;
            while (true) {
                float[] logits;
                try (NDManager step = manager.newSubManager()) {
                    NDArray ids = step.create(Arrays.stream(input).asLongStream().toArray()).reshape(1, input.length);
                    logits = toFloats(decoder.lastLogits(ids, null, cache));
                }
                int next = sampler.next(logits);
                out[produced++] = next;
                if (onToken != null) {
                    onToken.accept(next);
                }
                if (stop.contains(next)) {
                    return new Generation(Arrays.copyOf(out, produced), true);
                }
                if (produced == settings.maxNewTokens()) {
                    return new Generation(out, false);
                }
                input = new int[] {next};
            }
        }
    }

    /**
     * The same generation without a cache: every step runs {@link LlamaModel#forward} over the whole sequence
     * so far. Quadratically slower; the reference the cached path is tested and benchmarked against.
     */
    public Generation generateWithoutCache(int[] prompt, GenerationSettings settings, IntConsumer onToken) {
        checkPrompt(prompt);
        Sampler sampler = new Sampler(settings);
        Set<Integer> stop = new HashSet<>(settings.stopTokenIds());
        int[] sequence = Arrays.copyOf(prompt, prompt.length + settings.maxNewTokens());
        int length = prompt.length;
        while (true) {
            float[] logits;
            try (NDManager step = manager.newSubManager()) {
                long[] ids = new long[length];
                for (int i = 0; i < length; i++) {
                    ids[i] = sequence[i];
                }
                NDArray input = step.create(ids).reshape(1, length);
                NDArray all = model.forward(input, LlamaModel.defaultPositions(input), null);
                logits = toFloats(all.get("0, -1, :"));
            }
            int next = sampler.next(logits);
            sequence[length++] = next;
            if (onToken != null) {
                onToken.accept(next);
            }
            int produced = length - prompt.length;
            if (stop.contains(next) || produced == settings.maxNewTokens()) {
                return new Generation(Arrays.copyOfRange(sequence, prompt.length, length), stop.contains(next));
            }
        }
    }

    private void checkPrompt(int[] prompt) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("the prompt must hold at least one token");
        }
        int vocab = model.config().vocabSize();
        for (int i = 0; i < prompt.length; i++) {
            if (prompt[i] < 0 || prompt[i] >= vocab) {
                throw new IllegalArgumentException("prompt token " + prompt[i] + " at index " + i
                        + " is outside the model's vocabulary of " + vocab);
            }
        }
    }

    /** Logits of any float dtype as fp32 Java floats. */
    static float[] toFloats(NDArray logits) {
        NDArray fp32 = Kernels.get().dtypeOf(logits) == Dtype.FP32 ? logits : Kernels.get().cast(logits, Dtype.FP32);
        return fp32.toFloatArray();
    }

    public CachedDecoder decoder() {
        return decoder;
    }

    @Override
    public void close() {
        manager.close();
    }
}
