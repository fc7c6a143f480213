/**
 * How the verbs set up a run, in one place: {@link dev.jtune.trainer.setup.RunSettings} reads the config keys the
 * verbs use once, into types; {@link dev.jtune.trainer.setup.ModelSpec} says what model to build (checkpoint,
 * dtype, NF4, {@link dev.jtune.trainer.setup.AdapterSource adapter}, FSDP sharding of the base) and
 * {@link dev.jtune.trainer.setup.AssembledModel#load} builds it — for {@code train}, {@code inference} and
 * {@code score} alike.
 */
package dev.jtune.trainer.setup;
