/**
 * Datasets to token batches: loading rows, formatting and masking them into {@link dev.jtune.data.dataset.Sample}s,
 * packing samples into {@link dev.jtune.data.dataset.Row}s and padding rows into
 * {@link dev.jtune.data.dataset.Batch}es for the trainer.
 *
 * <p>Loading: {@link dev.jtune.data.dataset.DatasetReader#samples DatasetReader.samples(ds, cfg, tokenizer,
 * baseDir, report)} is the entry point: a lazy, closeable stream of one dataset's samples. Underneath,
 * {@link dev.jtune.data.dataset.DatasetFiles} picks the local files ({@code path}, {@code data_files},
 * {@code ds_type}; folders recursively, sorted; no downloads), {@link dev.jtune.data.dataset.JsonRows} streams
 * their rows ({@code .json} arrays with Jackson's streaming parser, {@code .jsonl} line by line) as
 * {@link dev.jtune.data.dataset.SourceRow}s carrying file and line, and a
 * {@link dev.jtune.data.dataset.SampleBuilder} per {@code type:} ({@link dev.jtune.data.dataset.AlpacaSamples},
 * {@link dev.jtune.data.dataset.ChatSamples}, {@link dev.jtune.data.dataset.CompletionSamples}) formats,
 * tokenizes and masks each row. Bad rows are {@link dev.jtune.data.dataset.DatasetException}s reading
 * {@code file:line: field 'x' ...}, or with {@code skip_invalid} are skipped and counted by reason in the
 * {@link dev.jtune.data.dataset.LoadReport}. Samples are not truncated here (apart from completion's
 * {@code sequence_len} chunks): what to do with long samples is the packing step's.
 */
package dev.jtune.data.dataset;
