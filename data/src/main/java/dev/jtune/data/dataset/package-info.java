/**
 * Datasets to token batches: loading rows, formatting and masking them into {@link dev.jtune.data.dataset.Sample}s,
 * packing samples into {@link dev.jtune.data.dataset.Row}s and padding rows into
 * {@link dev.jtune.data.dataset.Batch}es for the trainer.
 *
 * <p>The pipeline after loading:
 * <ul>
 *   <li>{@link dev.jtune.data.dataset.SampleSource} — the seam to the loaders: samples of one dataset entry
 *       (counting rows read/skipped into a {@link dev.jtune.data.dataset.RowTally}) and the files they come from.
 *   <li>{@link dev.jtune.data.dataset.Preprocessor#prepare} — length filter ({@code excess_length_strategy}),
 *       evaluation split ({@link dev.jtune.data.dataset.Split}), seeded shuffle, packing
 *       ({@link dev.jtune.data.dataset.Packer}, first-fit-decreasing) → rows and a
 *       {@link dev.jtune.data.dataset.PrepareReport}.
 *   <li>{@link dev.jtune.data.dataset.PreparedDataset#prepareOrLoad} — the same, cached on disk under
 *       {@code dataset_prepared_path} in a directory named by {@link dev.jtune.data.dataset.PreparedKey}
 *       (a hash of the data config keys, tokenizer files and dataset files), written atomically and
 *       memory-mapped on read; {@link dev.jtune.data.dataset.CorruptPreparedDataException} when damaged.
 *   <li>{@link dev.jtune.data.dataset.Batches} — an epoch's micro-batches in a (seed, epoch)-determined order,
 *       right-padded by {@link dev.jtune.data.dataset.Batches#collate}.
 * </ul>
 */
package dev.jtune.data.dataset;
