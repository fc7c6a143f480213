/** The {@code score} recipe: log-likelihood of texts or completions, as evaluation harnesses compute it. */
package dev.jtune.trainer.score;
