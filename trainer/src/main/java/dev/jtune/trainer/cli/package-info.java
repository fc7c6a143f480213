/**
 * The {@code jtune} command line that {@code ./launch.sh} runs: {@link dev.jtune.trainer.cli.Main} dispatches
 * to one class per verb ({@code init-model}, {@code score}, {@code preprocess}, {@code merge-lora},
 * {@code inference}); options are declared per verb so typos are errors.
 */
package dev.jtune.trainer.cli;
