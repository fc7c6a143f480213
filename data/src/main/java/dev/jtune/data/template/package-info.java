/**
 * Chat templates: render a conversation to the text a model is trained on, and tell which characters and
 * tokens belong to which message, so that labels can be masked to train only on assistant turns.
 *
 * <p>{@link dev.jtune.data.template.ChatTemplates#byName ChatTemplates.byName} picks a template: the
 * built-ins {@code alpaca}, {@code vicuna_v1.1}, {@code chatml}, {@code llama2}, {@code llama3}, Axolotl's named
 * Jinja templates ({@link dev.jtune.data.template.ChatTemplates#AXOLOTL}: {@code qwen3}, {@code gemma3}, ...,
 * shipped as resources copied at Axolotl's pinned commit), or
 * {@code tokenizer_default}, the Jinja {@code chat_template} of the model's tokenizer, rendered by jtune's Jinja2
 * interpreter ({@link dev.jtune.data.template.jinja}) as transformers renders it; a
 * {@link dev.jtune.data.template.JinjaChatTemplate} finds each message's content and end-of-turn token in the
 * rendering of the whole conversation.
 * {@link dev.jtune.data.template.ChatTemplate#render render} gives a
 * {@link dev.jtune.data.template.RenderedChat}: the text and, per message, its character range, its content
 * and its end-of-turn marker. {@link dev.jtune.data.template.TokenizedChat#of TokenizedChat.of} tokenizes the
 * text as transformers' {@code apply_chat_template(..., tokenize=True)} does (no special tokens added by the
 * tokenizer: the template writes them) and gives every token its message and whether it is trained on, for
 * a choice of trained spans per message (by default an assistant's content and marker;
 * {@link dev.jtune.data.template.TokenizedChat#ofSpans ofSpans} for several spans per message). A
 * {@link dev.jtune.data.template.Message} carries, besides role and content, the other fields a template reads
 * ({@code tool_calls}, {@code reasoning_content}, ...).
 *
 * <p>{@link dev.jtune.data.template.MistralInstruct} is not a template: mistral-common's instruct encoding of a chat
 * (v3, v7, v11, v13, finetuning mode) straight to ids, for {@code tokenizer_use_mistral_common: true}.
 *
 * <p>Why an interpreter of jtune's own renders the Jinja templates, how fast it is (56,826 rows per CPU second on
 * the Llama-3.1 template, against Jinjava's 2,219) and what of Jinja2 it does not do: see
 * {@link dev.jtune.data.template.jinja}. The chat-template corpus test (real templates of Llama 3.1/3.2, Mistral-Nemo,
 * Qwen2.5/3, QwQ, DeepSeek-R1-Distill, Gemma 2/3, Phi-3.5, Phi-4, SmolLM3, Hermes 3, gpt-oss) checks text, ids and
 * labels against transformers.
 */
package dev.jtune.data.template;
