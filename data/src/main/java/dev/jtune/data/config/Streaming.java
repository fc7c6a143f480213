package dev.jtune.data.config;

/**
 * Axolotl's streamed, packed data path (utils/data/sft.py {@code _prepare_streaming_dataset} and
 * utils/data/streaming.py {@code wrap_streaming_dataset} at {@link AxolotlKeys#COMMIT}), taken by
 * {@code pretraining_dataset:} and by {@code streaming: true} with {@code sample_packing: true}. Its rows differ from
 * the ordinary packed path: source rows are buffer-shuffled ({@code shuffle_merged_datasets}), tokenized and packed
 * one buffer of {@code bufferSize} rows at a time, each buffer's samples drawn in random order and first-fit into
 * bins of {@code capacity} = {@code micro_batch_size × sequence_len} tokens and at most {@code binSize} samples;
 * every bin is one row and {@code micro_batch_size} becomes 1; the rows are trained in that order.
 *
 * @param pretraining the data came from {@code pretraining_dataset:} (else {@code streaming: true} over
 *     {@code datasets[0]})
 * @param bufferSize {@code streaming_multipack_buffer_size} (or its deprecated name
 *     {@code pretrain_multipack_buffer_size}); default 10,000
 * @param binSize {@code sample_packing_bin_size}; default 200
 * @param capacity tokens per packed row: the config's {@code micro_batch_size} times {@code sequence_len}
 */
public record Streaming(boolean pretraining, int bufferSize, int binSize, int capacity) {
    public static final int DEFAULT_BUFFER_SIZE = 10_000;
    public static final int DEFAULT_BIN_SIZE = 200;

    public Streaming {
        if (bufferSize < 1 || binSize < 1 || capacity < 1) {
            throw new IllegalArgumentException("bufferSize, binSize and capacity must be positive");
        }
    }
}
