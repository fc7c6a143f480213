package dev.jtune.data.tokenizer;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/** tokenizer.json's {@code added_tokens} entries, with the fields in the order the tokenizers library writes them. */
final class AddedTokens {
    private AddedTokens() {}

    /** Appends {@code {id, content, single_word, lstrip, rstrip, normalized: false..., special}} and returns it. */
    static ObjectNode append(ArrayNode addedTokens, int id, String content, boolean special) {
        ObjectNode t = addedTokens.addObject();
        t.put("id", id);
        t.put("content", content);
        t.put("single_word", false);
        t.put("lstrip", false);
        t.put("rstrip", false);
        t.put("normalized", false);
        t.put("special", special);
        return t;
    }
}
