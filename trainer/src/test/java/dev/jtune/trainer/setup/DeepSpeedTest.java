package dev.jtune.trainer.setup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.data.config.TrainConfig;
import dev.jtune.trainer.train.TrainerOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** {@code deepspeed:} — Axolotl's shipped files by name, a user's JSON, and what is refused with which key. */
class DeepSpeedTest {
    private static final String ADAPTER = "adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\n";

    private static TrainConfig config(Path dir, String keys) throws Exception {
        Files.writeString(dir.resolve("rows.jsonl"), "{\"instruction\": \"a\", \"output\": \"b\"}\n");
        Path file = dir.resolve("cfg.yml");
        Files.writeString(file, """
                base_model: %s
                datasets:
                  - path: %s
                    type: alpaca
                output_dir: %s
                micro_batch_size: 2
                gradient_accumulation_steps: 4
                learning_rate: 0.0002
                max_grad_norm: 1.0
                %s
                """.formatted(dir.resolve("model"), dir.resolve("rows.jsonl"), dir.resolve("out"), keys));
        return TrainConfig.load(file);
    }

    private static DeepSpeed ds(TrainConfig c, boolean adapter) {
        return DeepSpeed.from(c, TrainerOptions.from(c), adapter, 2).orElseThrow();
    }

    private static String refusal(TrainConfig c, boolean adapter) {
        return assertThrows(IllegalArgumentException.class, () -> ds(c, adapter)).getMessage();
    }

    /** Users copy Axolotl's YAML without its deepspeed_configs/ folder: the shipped names are known. */
    @ParameterizedTest
    @CsvSource({"zero1.json, 1, false, ''", "zero2.json, 2, false, optimizer state", "zero3.json, 3, true, ''",
            "zero3_bf16.json, 3, true, ''", "zero3_bf16_cpuoffload_all.json, 3, true, optimizer state and parameters",
            "zero3_bf16_cpuoffload_params.json, 3, true, parameters", "zero1_torch_compile.json, 1, false, ''"})
    void axolotlsShippedFilesAreKnownByName(String name, int stage, boolean fsdp, String offload, @TempDir Path dir)
            throws Exception {
        TrainConfig c = config(dir, ADAPTER + "bf16: true\ndeepspeed: deepspeed_configs/" + name + "\n");
        DeepSpeed d = ds(c, true);
        assertEquals(stage, d.stage());
        assertEquals(fsdp, d.apply(TrainerOptions.from(c)).fsdp());
        assertEquals(offload, String.join(" and ", d.offload()));
        assertTrue(d.note().contains("ZeRO-" + stage) && d.note().contains("Axolotl's shipped deepspeed_configs/" + name)
                && d.note().contains(fsdp ? "FSDP full_shard" : "data parallel"), d.note());
        assertEquals(!offload.isEmpty(), d.note().contains("to CPU is a memory placement"), d.note());
    }

    @Test
    void aFileNextToTheConfigIsReadFirst(@TempDir Path dir) throws Exception {
        Files.createDirectories(dir.resolve("deepspeed_configs"));
        // Shadows the shipped zero1.json: stage 2 here.
        Files.writeString(dir.resolve("deepspeed_configs/zero1.json"), """
                {"zero_optimization": {"stage": 2}, "gradient_clipping": "auto", "bf16": {"enabled": "auto"}}""");
        DeepSpeed d = ds(config(dir, ADAPTER + "deepspeed: deepspeed_configs/zero1.json\n"), true);
        assertEquals(2, d.stage());
        assertEquals(dir.resolve("deepspeed_configs/zero1.json").toString(), d.source());
    }

    @Test
    void aMissingFileOfAnotherNameIsAnErrorNamingWhereItLooked(@TempDir Path dir) throws Exception {
        String m = refusal(config(dir, ADAPTER + "deepspeed: ds/my_zero.json\n"), true);
        assertTrue(m.contains("deepspeed: ds/my_zero.json: file not found") && m.contains(dir.resolve("ds/my_zero.json")
                .toString()) && m.contains("zero3_bf16.json"), m);
    }

    @Test
    void badJsonNamesTheFileAndLine(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("ds.json"), "{\n  \"zero_optimization\": {\"stage\": 2,}\n}\n");
        String m = refusal(config(dir, ADAPTER + "deepspeed: ds.json\n"), true);
        assertTrue(m.contains(dir.resolve("ds.json") + " is not valid JSON") && m.contains("line 2"), m);
    }

    /** What would change the result is refused, naming the key (as transformers' mismatch check, or beyond it). */
    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "{\"gradient_clipping\": 0.5} | gradient_clipping = 0.5 | max_grad_norm = 1",
            "{\"zero_optimization\": {\"stage\": 2}} | gradient_clipping is not supported | DeepSpeed does not clip",
            "{\"gradient_clipping\": \"auto\", \"train_micro_batch_size_per_gpu\": 4} | train_micro_batch_size_per_gpu = 4 | micro_batch_size = 2",
            "{\"gradient_clipping\": \"auto\", \"train_batch_size\": 8} | train_batch_size = 8 | world size = 16",
            "{\"gradient_clipping\": \"auto\", \"scheduler\": {\"type\": \"WarmupLR\"}} | scheduler = | not know",
            "{\"gradient_clipping\": \"auto\", \"optimizer\": {\"type\": \"Lamb\"}} | optimizer.type = \"Lamb\" | AdamW",
            "{\"gradient_clipping\": \"auto\", \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 0.001}}} | optimizer.params.lr = 0.001 | learning_rate = 2.0E-4",
            "{\"gradient_clipping\": \"auto\", \"bf16\": {\"enabled\": false}} | bf16.enabled = false | bf16: true",
            "{\"gradient_clipping\": \"auto\", \"fp16\": {\"enabled\": true}} | fp16.enabled = true | fp16: false",
            "{\"gradient_clipping\": \"auto\", \"zero_optimization\": {\"stage\": 3, \"zero_quantized_weights\": true}} | zero_quantized_weights | ZeRO++",
            "{\"gradient_clipping\": \"auto\", \"communication_data_type\": \"bf16\"} | communication_data_type | fp32",
            "{\"gradient_clipping\": \"auto\", \"zero_optimization\": {\"stage\": 5}} | zero_optimization.stage = 5 | 0, 1, 2 or 3"})
    void settingsThatChangeTheResultAreRefused(String json, String key, String why, @TempDir Path dir)
            throws Exception {
        Files.writeString(dir.resolve("ds.json"), json);
        String m = refusal(config(dir, ADAPTER + "bf16: true\ndeepspeed: ds.json\n"), true);
        assertTrue(m.startsWith(dir.resolve("cfg.yml") + ": deepspeed: ds.json (" + dir.resolve("ds.json") + "): "), m);
        assertTrue(m.contains(key) && m.contains(why), m);
    }

    @Test
    void fp16IsRefusedForDeepSpeedsOwnLossScaler(@TempDir Path dir) throws Exception {
        String m = refusal(config(dir, ADAPTER + "fp16: true\ndeepspeed: deepspeed_configs/zero2.json\n"), true);
        assertTrue(m.contains("fp16.enabled = \"auto\"") && m.contains("loss scaler"), m);
    }

    @Test
    void bf16FullFineTuningIsAcceptedWithFp32MasterWeights(@TempDir Path dir) throws Exception {
        // DeepSpeed's bf16 keeps fp32 master weights and AdamW state, and so does jtune for it (fp32MasterWeights).
        assertEquals(3, ds(config(dir, "bf16: true\ndeepspeed: deepspeed_configs/zero3_bf16.json\n"), false).stage());
        assertTrue(RunSettings.fp32MasterWeights(false, dev.jtune.model.engine.Dtype.BF16, false, true));
        // fp32 full fine-tuning with "auto" precision is plain data parallel / FSDP: accepted.
        TrainConfig fp32 = config(dir, "deepspeed: deepspeed_configs/zero3.json\n");
        assertEquals(3, ds(fp32, false).stage());
        // ... and zero3_bf16.json forces bf16, which a config without bf16 contradicts (transformers stops).
        assertTrue(refusal(config(dir, "deepspeed: deepspeed_configs/zero3_bf16.json\n"), false)
                .contains("bf16.enabled = true is not supported: the config says bf16: false"));
    }

    @Test
    void deepspeedAndFsdpTogetherAreRefusedAsInAxolotl(@TempDir Path dir) throws Exception {
        String m = refusal(config(dir, ADAPTER + "deepspeed: deepspeed_configs/zero3.json\nfsdp: [full_shard]\n"), true);
        assertTrue(m.contains("deepspeed and fsdp cannot be used together"), m);
    }

    @Test
    void unsetIsNothing(@TempDir Path dir) throws Exception {
        TrainConfig c = config(dir, ADAPTER);
        assertFalse(DeepSpeed.from(c, TrainerOptions.from(c), true, 1).isPresent());
        assertEquals(8, DeepSpeed.SHIPPED.size());
        for (String name : DeepSpeed.SHIPPED) {
            assertTrue(DeepSpeed.class.getResource("deepspeed_configs/" + name) != null, name);
        }
        assertTrue(List.of("zero1.json", "zero3_bf16.json").stream().allMatch(DeepSpeed.SHIPPED::contains));
    }
}
