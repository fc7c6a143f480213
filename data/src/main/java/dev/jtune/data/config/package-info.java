/**
 * Training configs: an Axolotl-style YAML file read into immutable records, with Axolotl's key names and
 * defaults, so an Axolotl user's config mostly works unchanged.
 *
 * <ul>
 *   <li>{@link dev.jtune.data.config.TrainConfig#load(java.nio.file.Path)} reads a file. Data keys
 *       ({@code datasets}, {@code sequence_len}, {@code val_set_size}, ...) become typed components;
 *       model, adapter and trainer keys ({@code lora_r}, {@code learning_rate}, ...) are type-checked into
 *       {@link dev.jtune.data.config.TrainerSettings} for the trainer to read.</li>
 *   <li>{@link dev.jtune.data.config.DatasetConfig} is one {@code datasets:} entry; its
 *       {@link dev.jtune.data.config.DatasetFormat} is a sealed set of records, one per family of
 *       {@link dev.jtune.data.config.DatasetType}, with Axolotl's field-mapping defaults ({@code pretraining_dataset:}'s
 *       first entry is read into the same record, and {@link dev.jtune.data.config.Streaming} says how its rows are
 *       packed) (and the other spellings
 *       its loader resolves to the same type, e.g. {@code chat_template.load}); its {@code split:} is a
 *       {@link dev.jtune.data.config.SplitSpec}, Hugging Face datasets' slice syntax ({@code train[:20%]}).</li>
 *   <li>{@link dev.jtune.data.config.AxolotlKeys} is Axolotl's whole schema at a pinned commit, one policy per
 *       key: implemented, equivalent here (an info line), not available offline (a warning line), refused (a
 *       problem naming key, value and what jtune offers). The lines are
 *       {@link dev.jtune.data.config.TrainConfig#notes()} ({@link dev.jtune.data.config.ConfigNote}), printed
 *       once by the verbs. {@link dev.jtune.data.config.ConfigClasses} maps the transformers config classes
 *       {@code cls_model_config} may name to their {@code model_type}.</li>
 *   <li>Every problem is a {@link dev.jtune.data.config.ConfigException} reading
 *       {@code file:line:column: problem}: keys outside Axolotl's schema (with a
 *       {@link dev.jtune.data.config.Suggest} "did you mean" hint), refused keys, duplicate keys, wrong types,
 *       values outside a closed set (listing it), keys that do not apply to a dataset's type, missing required
 *       keys. All problems of a file are reported in one run: one exception listing each
 *       ({@link dev.jtune.data.config.ConfigException#problems()}).</li>
 *   <li>{@link dev.jtune.data.config.ConfigProblems} collects the problems of checks made after loading (the
 *       trainer's, against the model's config.json) and reports them the same way, at the positions
 *       {@link dev.jtune.data.config.TrainConfig#position(String)} keeps for every key and list item.</li>
 * </ul>
 *
 * <p>Relative paths (datasets, {@code output_dir}) are kept as written: Axolotl reads them against the
 * working directory, not the config file's. {@link dev.jtune.data.config.DatasetConfig#resolve} resolves
 * one against any base a caller prefers.
 */
package dev.jtune.data.config;
