package dev.jtune.data.config;

/**
 * How much of the training data is held out for evaluation ({@code val_set_size}): a YAML float is a
 * fraction, a YAML integer a number of examples, as in Hugging Face's {@code train_test_split}.
 */
public sealed interface ValSetSize {
    /** No evaluation split. */
    ValSetSize NONE = new Count(0);

    /** Number of examples to hold out out of {@code datasetSize}, never more than there are. */
    long examplesOutOf(long datasetSize);

    /** A fraction of the examples, in [0, 1); rounded up, as {@code train_test_split} does. */
    record Fraction(double fraction) implements ValSetSize {
        public Fraction {
            if (!(fraction >= 0 && fraction < 1)) throw new IllegalArgumentException("fraction not in [0, 1): " + fraction);
        }

        @Override
        public long examplesOutOf(long datasetSize) {
            return Math.min(datasetSize, (long) Math.ceil(fraction * datasetSize));
        }
    }

    /** A number of examples, at least 0. */
    record Count(long count) implements ValSetSize {
        public Count {
            if (count < 0) throw new IllegalArgumentException("negative count: " + count);
        }

        @Override
        public long examplesOutOf(long datasetSize) {
            return Math.min(datasetSize, count);
        }
    }
}
