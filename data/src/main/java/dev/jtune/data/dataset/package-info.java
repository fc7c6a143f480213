/**
 * Datasets to token batches: loading rows, formatting and masking them into {@link dev.jtune.data.dataset.Sample}s,
 * packing samples into {@link dev.jtune.data.dataset.Row}s and padding rows into
 * {@link dev.jtune.data.dataset.Batch}es for the trainer.
 */
package dev.jtune.data.dataset;
