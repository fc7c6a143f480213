package dev.jtune.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import dev.jtune.data.template.AlpacaTemplate;
import dev.jtune.data.tokenizer.Tokenizer;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.generate.GenerationSettings;
import dev.jtune.model.generate.Generator;
import dev.jtune.model.hf.HfCheckpoint;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.lora.LoraMerge;
import dev.jtune.lora.LoraModel;
import dev.jtune.lora.LoraSettings;
import dev.jtune.lora.PeftAdapter;
import java.util.List;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code inference} end to end on a checkpoint written by init-model, with an Alpaca config pointing at it. */
class InferenceCommandTest {
    @TempDir
    static Path tmp;
    private static Path model;
    private static Path config;

    @BeforeAll
    static void writeModelAndConfig() throws Exception {
        model = tmp.resolve("tiny");
        InitModelCommand.initModel(model, "tiny", null, 3, false, new PrintStream(new ByteArrayOutputStream()));
        config = tmp.resolve("config.yml");
        Files.writeString(config, """
                base_model: %s
                datasets:
                  - path: data/train.jsonl
                    type: alpaca
                eval_max_new_tokens: 10
                """.formatted(model));
    }

    private record Run(int code, String out, String log) {}

    private static Run run(String stdin, String... argv) throws Exception {
        var out = new ByteArrayOutputStream();
        var log = new ByteArrayOutputStream();
        try (var o = new PrintStream(out, true, StandardCharsets.UTF_8);
                var l = new PrintStream(log, true, StandardCharsets.UTF_8)) {
            int code = InferenceCommand.infer(InferenceCommand.parse(argv), new BufferedReader(new StringReader(stdin)), o, l,
                    false);
            return new Run(code, out.toString(StandardCharsets.UTF_8), log.toString(StandardCharsets.UTF_8));
        }
    }

    /** The reply computed without the command: Alpaca prompt written out here, greedy, EOS stops. */
    private static String expectedReply(String prompt, int maxNew) {
        try (NDManager m = Torch.newManager(); Tokenizer tokenizer = Tokenizer.load(model);
                HfCheckpoint ckpt = HfCheckpoint.open(model);
                LlamaModel llama = LlamaModel.load(ckpt.config(), ckpt, Dtype.FP32, m);
                Generator g = new Generator(llama, m)) {
            String text = tokenizer.bosToken().orElse("") + AlpacaTemplate.DEFAULT_SYSTEM + "\n\n### Instruction:\n" + prompt
                    + "\n\n### Response:\n";
            int[] ids = tokenizer.encode(text, false);
            assertEquals(tokenizer.bosId().getAsInt(), ids[0], "the template writes BOS once");
            return g.generate(ids, GenerationSettings.greedy(maxNew, tokenizer.eosIds()), null).text(tokenizer);
        }
    }

    @Test
    void promptPrintsTheGreedyReplyOfTheAlpacaPromptAndIsDeterministic() throws Exception {
        Run a = run("", config.toString(), "--prompt", "Name a colour.");
        assertEquals(0, a.code());
        assertTrue(a.log().contains("alpaca prompt"), a.log());
        assertTrue(a.log().contains("max 10 new tokens") && a.log().contains("greedy"), a.log());
        assertEquals(expectedReply("Name a colour.", 10) + "\n", a.out());
        assertEquals(a.out(), run("", config.toString(), "--prompt", "Name a colour.").out());
    }

    @Test
    void interactiveModeAnswersEachLineOfInput() throws Exception {
        Run r = run("Hello there\n\nSay more\n", config.toString(), "--max-new-tokens", "6");
        assertEquals(0, r.code());
        assertEquals(expectedReply("Hello there", 6) + "\n" + expectedReply("Say more", 6) + "\n", r.out());
    }

    @Test
    void seededSamplingRepeatsAndDiffersFromGreedy() throws Exception {
        String[] sampled = {config.toString(), "--prompt", "Hi", "--temperature", "5", "--top-p", "0.99", "--seed", "7",
            "--max-new-tokens", "12"};
        Run a = run("", sampled);
        assertEquals(a.out(), run("", sampled).out());
        assertTrue(a.log().contains("sampling at temperature 5.0"), a.log());
        assertFalse(a.out().equals(run("", config.toString(), "--prompt", "Hi", "--max-new-tokens", "12").out()),
                "temperature 5 on a near-uniform model draws other tokens than greedy");
    }

    @Test
    void anAdapterGeneratesWhatItsMergedModelGenerates() throws Exception {
        Path adapter = tmp.resolve("adapter");
        Path merged = tmp.resolve("merged");
        var settings = new LoraSettings(LoraSettings.Adapter.LORA, 4, 8, 0.0, List.of("q_proj", "v_proj", "down_proj"),
                false, List.of());
        try (NDManager m = Torch.newManager(); HfCheckpoint ckpt = HfCheckpoint.open(model)) {
            LoraModel lora = LoraModel.fresh(settings, 1, LoraModel.dense());
            try (LlamaModel llama = LlamaModel.load(ckpt.config(), ckpt, Dtype.FP32, m, lora)) {
                lora.attach(llama);
                for (var e : lora.trainableParameters().entrySet()) {
                    if (e.getKey().contains("lora_B")) { // B starts at zero: make the adapter change something
                        NDArray b = e.getValue();
                        b.set(m.randomNormal(0, 0.5f, b.getShape(), DataType.FLOAT32).toFloatArray());
                    }
                }
                lora.save(adapter, model.toString());
            }
        }
        LoraMerge.merge(model, PeftAdapter.load(adapter), merged);
        Run withAdapter = run("", config.toString(), "--prompt", "Hi", "--lora-model-dir", adapter.toString(),
                "--max-new-tokens", "8");
        Run withMerged = run("", config.toString(), "--prompt", "Hi", "--model", merged.toString(), "--max-new-tokens", "8");
        Run base = run("", config.toString(), "--prompt", "Hi", "--max-new-tokens", "8");
        assertEquals(withMerged.out(), withAdapter.out());
        assertFalse(base.out().equals(withAdapter.out()), "the adapter changes the reply");
        assertTrue(withAdapter.log().contains("+ adapter"), withAdapter.log());
        var missing = assertThrows(java.nio.file.NoSuchFileException.class,
                () -> run("", config.toString(), "--prompt", "x", "--lora-model-dir", tmp.resolve("nope").toString()));
        assertTrue(missing.getMessage().contains("nope"), missing.getMessage());
    }

    @Test
    void badUsageIsExitCodeTwoWithTheVerbsHelp() {
        var out = new ByteArrayOutputStream();
        var err = new ByteArrayOutputStream();
        int code = Main.run(new String[] {"inference", config.toString(), "--top-p", "1.5", "--prompt", "x"},
                new PrintStream(out), new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(2, code);
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("top_p must be in (0, 1]"), err.toString());
        assertEquals(2, Main.run(new String[] {"inference", config.toString(), "--temprature", "1"},
                new PrintStream(out), new PrintStream(err)));
        assertEquals(0, Main.run(new String[] {"inference", "--help"}, new PrintStream(out), new PrintStream(err)));
        assertTrue(Main.help().contains("inference"));
    }

    @Test
    void dtypeFollowsTheConfigsPrecisionKeys() throws Exception {
        Path bf16 = tmp.resolve("bf16.yml");
        Files.writeString(bf16, "base_model: " + model + "\nbf16: auto\n");
        assertEquals(Dtype.BF16, dev.jtune.trainer.setup.RunSettings.from(dev.jtune.data.config.TrainConfig.load(bf16)).inferenceDtype());
        Path fp16 = tmp.resolve("fp16.yml");
        Files.writeString(fp16, "base_model: " + model + "\nfp16: true\n");
        assertEquals(Dtype.FP16, dev.jtune.trainer.setup.RunSettings.from(dev.jtune.data.config.TrainConfig.load(fp16)).inferenceDtype());
        assertEquals(Dtype.FP32, dev.jtune.trainer.setup.RunSettings.from(dev.jtune.data.config.TrainConfig.load(config)).inferenceDtype());
        Run r = run("", bf16.toString(), "--prompt", "x", "--max-new-tokens", "3");
        assertEquals(0, r.code());
        assertTrue(r.log().contains("(bf16)") && r.log().contains("raw text"), r.log());
    }
}
