package dev.jtune.data.tokenizer;

/**
 * A tokenizer directory cannot be loaded or written: a file is missing, is not valid JSON, or describes
 * something the Hugging Face tokenizers library rejects. The message names the file and the problem.
 */
public final class TokenizerException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public TokenizerException(String message) {
        super(message);
    }

    public TokenizerException(String message, Throwable cause) {
        super(message, cause);
    }
}
