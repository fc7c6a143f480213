/**
 * Datasets to token batches: loading rows, formatting and masking them into {@link dev.jtune.data.dataset.Sample}s,
 * packing samples into {@link dev.jtune.data.dataset.Row}s and padding rows into
 * {@link dev.jtune.data.dataset.Batch}es for the trainer.
 *
 * <p>Loading: {@link dev.jtune.data.dataset.DatasetReader#samples DatasetReader.samples(ds, cfg, tokenizer,
 * baseDir, report)} is the entry point: a lazy, closeable stream of one dataset's samples. Underneath,
 * {@link dev.jtune.data.dataset.DatasetFiles} picks the local files ({@code path}, {@code data_files},
 * {@code ds_type}; folders recursively, sorted; no downloads), {@link dev.jtune.data.dataset.JsonRows} streams
 * their rows ({@code .json} arrays with Jackson's streaming parser, {@code .jsonl} line by line; either
 * compressed whole as .gz, .bz2, .xz or .zst, told by the first bytes as datasets does; a {@code split:} slice
 * reads only its rows) as
 * {@link dev.jtune.data.dataset.SourceRow}s carrying file and line, and a
 * {@link dev.jtune.data.dataset.SampleBuilder} per {@code type:} ({@link dev.jtune.data.dataset.AlpacaSamples},
 * {@link dev.jtune.data.dataset.ChatSamples}, {@link dev.jtune.data.dataset.CompletionSamples},
 * {@link dev.jtune.data.dataset.InputOutputSamples}, {@link dev.jtune.data.dataset.UserDefinedSamples},
 * {@link dev.jtune.data.dataset.PreTokenizedSamples} for an entry without {@code type:};
 * {@link dev.jtune.data.dataset.MistralChatSamples} for chat entries under {@code tokenizer_use_mistral_common: true},
 * Axolotl's MistralStrategy over mistral-common's encoding;
 * {@link dev.jtune.data.dataset.PretrainSamples} for a {@code pretraining_dataset} of {@code type: pretrain}) formats,
 * tokenizes and masks each row. Bad rows are {@link dev.jtune.data.dataset.DatasetException}s reading
 * {@code file:line: field 'x' ...}, or with {@code skip_invalid} are skipped and counted by reason in the
 * {@link dev.jtune.data.dataset.LoadReport}. The rows are built on one worker thread per core (JSON lines parsed
 * there too), a chunk at a time, and taken back in reading order: samples, counts and errors are those of a
 * sequential read. Samples are not truncated here (apart from completion's
 * {@code sequence_len} chunks): what to do with long samples is the packing step's.
 *
 * <p>The pipeline after loading:
 * <ul>
 *   <li>{@link dev.jtune.data.dataset.SampleSource} — the seam to the loaders: samples of one dataset entry
 *       (counting rows read/skipped into a {@link dev.jtune.data.dataset.RowTally}) and the files they come from.
 *   <li>{@link dev.jtune.data.dataset.Preprocessor#prepare} — length filter ({@code excess_length_strategy}),
 *       evaluation split ({@link dev.jtune.data.dataset.Split}), seeded shuffle, packing
 *       ({@link dev.jtune.data.dataset.Packer}, first-fit-decreasing) → rows and a
 *       {@link dev.jtune.data.dataset.PrepareReport}. With {@link dev.jtune.data.config.TrainConfig#streaming()}
 *       Axolotl's streamed path instead: source rows ({@link dev.jtune.data.dataset.SampleSource#openByRow})
 *       buffer-shuffled, packed per buffer in a seeded random order by
 *       {@link dev.jtune.data.dataset.Packer#firstFit} into {@code micro_batch_size × sequence_len} rows.
 *   <li>{@link dev.jtune.data.dataset.PreparedDataset#prepareOrLoad} — the same, cached on disk under
 *       {@code dataset_prepared_path} in a directory named by {@link dev.jtune.data.dataset.PreparedKey}
 *       (a hash of the data config keys, tokenizer files and dataset files), written atomically and
 *       memory-mapped on read; {@link dev.jtune.data.dataset.CorruptPreparedDataException} when damaged.
 *   <li>{@link dev.jtune.data.dataset.Batches} — an epoch's micro-batches in a (seed, epoch)-determined order,
 *       right-padded by {@link dev.jtune.data.dataset.Batches#collate}.
 * </ul>
 */
package dev.jtune.data.dataset;
