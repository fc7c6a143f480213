/**
 * Tokenization for jtune: Hugging Face {@code tokenizer.json} files, run by the Rust tokenizers library
 * that DJL bundles (no libtorch, no downloads), and a writer for small byte-level BPE tokenizers.
 *
 * <ul>
 *   <li>{@link dev.jtune.data.tokenizer.Tokenizer} loads a model directory ({@code tokenizer.json}, plus
 *       {@code tokenizer_config.json}, {@code special_tokens_map.json} and {@code generation_config.json}
 *       when present). {@code encode(text, true)} gives what Hugging Face's {@code tokenizer(text)} gives
 *       from {@code tokenizer.json}: its post-processor decides which special tokens are added. Nothing is
 *       ever truncated or padded, whatever DJL's defaults or the file's own {@code truncation} and
 *       {@code padding} sections say; only {@code encodeWindows} truncates, on its own copy, into the overlapping
 *       windows transformers' {@code return_overflowing_tokens} with {@code stride} gives. Where transformers 5 does not run tokenizer.json as written, neither does
 *       it: a tokenizer_config.json naming {@code LlamaTokenizer}/{@code LlamaTokenizerFast} gets transformers'
 *       LlamaTokenizer rebuild (a Metaspace pre-tokenizer instead of the file's {@code Prepend("▁")} normalizer),
 *       unless config.json's {@code model_type} makes transformers choose another class (Mistral, DeepSeek-V3,
 *       Qwen2, Phi-3, ...: the list is transformers 5.18's, in {@code transformers-llama-class-ignored.txt}).</li>
 *   <li>{@link dev.jtune.data.tokenizer.Tekken} reads a Mistral {@code tekken.json} (mistral-common's Tekken:
 *       tiktoken ranks, its regex, control tokens ahead of the ranks) and converts it to the equivalent tokenizer.json;
 *       {@code Tokenizer.load} reads a folder that has a {@code tekken.json} and no {@code tokenizer.json} so, and
 *       {@link dev.jtune.data.tokenizer.Tokenizer#tekken Tokenizer.tekken} gives, without control tokens, the encoder
 *       of message text that mistral-common's encoding needs (equal to tiktoken's ids on the real 131k vocabulary).</li>
 *   <li>{@link dev.jtune.data.tokenizer.ByteLevelTokenizerBuilder} trains a byte-level BPE (GPT-2 byte
 *       alphabet, Llama-style {@code <s>} prefix) on a text and writes it as a Hugging Face tokenizer
 *       directory that both DJL and Python {@code transformers} load; {@code writeDefault} gives a
 *       deterministic 512-token tokenizer for tests and quickstarts.</li>
 *   <li>{@link dev.jtune.data.tokenizer.TokenizerEdits} applies Axolotl's {@code added_tokens_overrides},
 *       {@code special_tokens} and {@code tokens} to a tokenizer folder and writes the grown folder, with the ids the
 *       tokenizers library assigns, for {@code Tokenizer.load} and transformers alike.</li>
 * </ul>
 *
 * <p>DJL's tokenizer natives come from the {@code ai.djl.huggingface:tokenizers} jar and are extracted once
 * into DJL's cache folder; this package forces the CPU build and DJL's offline mode before first use, so
 * nothing is downloaded at run time.
 */
package dev.jtune.data.tokenizer;
