/**
 * Reading and writing the <a href="https://github.com/huggingface/safetensors">safetensors</a> format in pure Java
 * (no libtorch), byte-compatible with Python's {@code safetensors} and with Hugging Face {@code transformers}
 * checkpoints.
 *
 * <p>Public surface:
 * <ul>
 *   <li>{@link dev.jtune.model.safetensors.SafetensorsFile}: one {@code .safetensors} file, memory-mapped with
 *       the FFM API (files over 2 GiB work) and validated the way the Rust {@code safetensors} crate validates it;
 *       tensors come back as {@link java.lang.foreign.MemorySegment} views or converted Java arrays.</li>
 *   <li>{@link dev.jtune.model.safetensors.SafetensorsCheckpoint}: a Hugging Face model directory, either a
 *       single {@code model.safetensors} or shards listed by {@code model.safetensors.index.json}.</li>
 *   <li>{@link dev.jtune.model.safetensors.SafetensorsWriter}: atomic, streaming writes of single files and of
 *       transformers-style sharded checkpoints; tensors are described by
 *       {@link dev.jtune.model.safetensors.SafetensorsWriter.Entry} and produce their bytes through a
 *       {@link dev.jtune.model.safetensors.SafetensorsWriter.ByteSource}.</li>
 *   <li>{@link dev.jtune.model.safetensors.TensorInfo} and {@link dev.jtune.model.safetensors.SafetensorsDtype}:
 *       a tensor's header entry and its element type.</li>
 *   <li>{@link dev.jtune.model.safetensors.HalfFloats}: exact float32 to/from float16 and bfloat16 conversions
 *       (round-to-nearest-even, as torch rounds).</li>
 *   <li>{@link dev.jtune.model.safetensors.SafetensorsException}: every malformed-file, missing-tensor and I/O
 *       error; the message names the file (or directory) and the problem.</li>
 * </ul>
 *
 * <p>The format: an 8-byte little-endian header length {@code N}, {@code N} bytes of UTF-8 JSON (padded with spaces
 * to a multiple of 8 by writers), then the data section. The JSON maps each tensor name to
 * {@code {"dtype", "shape", "data_offsets": [begin, end]}} (offsets relative to the data section) and may hold a
 * string-to-string {@code "__metadata__"} object. Tensor data is little-endian, row-major, and the tensors tile the
 * data section exactly.
 */
package dev.jtune.model.safetensors;
