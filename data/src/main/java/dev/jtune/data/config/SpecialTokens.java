package dev.jtune.data.config;

import java.util.Optional;

/** Special tokens that override or add to the tokenizer's own ({@code special_tokens:}). */
public record SpecialTokens(Optional<String> bosToken, Optional<String> eosToken, Optional<String> padToken,
        Optional<String> unkToken) {
    /** No overrides. */
    public static final SpecialTokens NONE = new SpecialTokens(Optional.empty(), Optional.empty(), Optional.empty(),
            Optional.empty());

    public boolean isEmpty() {
        return bosToken.isEmpty() && eosToken.isEmpty() && padToken.isEmpty() && unkToken.isEmpty();
    }
}
