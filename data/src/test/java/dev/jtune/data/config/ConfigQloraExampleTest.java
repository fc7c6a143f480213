package dev.jtune.data.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A QLoRA config in the style of Axolotl's examples/llama-2/qlora.yml, empty keys and all. */
class ConfigQloraExampleTest {
    static final String QLORA = """
            base_model: NousResearch/Llama-2-7b-hf
            model_type: LlamaForCausalLM
            tokenizer_type: LlamaTokenizer
            is_llama_derived_model: true

            load_in_8bit: false
            load_in_4bit: true
            strict: false

            datasets:
              - path: mhenrichsen/alpaca_2k_test
                type: alpaca
            dataset_prepared_path: last_run_prepared
            val_set_size: 0.05
            output_dir: ./outputs/qlora-out

            adapter: qlora
            lora_model_dir:

            sequence_len: 4096
            sample_packing: true
            pad_to_sequence_len: true

            lora_r: 32
            lora_alpha: 16
            lora_dropout: 0.05
            lora_target_modules:
            lora_target_linear: true
            lora_fan_in_fan_out:

            wandb_project:
            wandb_entity:
            wandb_watch:
            wandb_name:
            wandb_log_model:

            gradient_accumulation_steps: 4
            micro_batch_size: 1
            num_epochs: 1
            optimizer: paged_adamw_32bit
            lr_scheduler: cosine
            learning_rate: 0.0002

            train_on_inputs: false
            group_by_length: false
            bf16: auto
            fp16:
            tf32: false

            gradient_checkpointing: true
            early_stopping_patience:
            resume_from_checkpoint:
            local_rank:
            logging_steps: 1
            xformers_attention:
            flash_attention: true

            warmup_steps: 10
            evals_per_epoch: 4
            eval_table_size:
            saves_per_epoch: 1
            debug:
            deepspeed:
            weight_decay: 0.0
            fsdp:
            fsdp_config:
            special_tokens:
              bos_token: "<s>"
              eos_token: "</s>"
              unk_token: "<unk>"
            """;

    @TempDir
    Path dir;

    @Test
    void parsesEveryValue() throws IOException {
        Path file = dir.resolve("qlora.yml");
        Files.writeString(file, QLORA);
        TrainConfig config = TrainConfig.load(file);

        assertEquals(file, config.source());
        assertEquals("NousResearch/Llama-2-7b-hf", config.baseModel());
        assertEquals(Optional.of("LlamaForCausalLM"), config.modelType());
        assertEquals(Optional.of("LlamaTokenizer"), config.tokenizerType());
        assertEquals(Optional.empty(), config.baseModelConfig());

        assertEquals(1, config.datasets().size());
        DatasetConfig dataset = config.datasets().get(0);
        assertEquals("mhenrichsen/alpaca_2k_test", dataset.path());
        assertEquals(DatasetType.ALPACA, dataset.type());
        assertEquals(DatasetFormat.Alpaca.DEFAULT, dataset.format());
        assertEquals(List.of(), config.testDatasets());

        assertEquals(Optional.of("last_run_prepared"), config.datasetPreparedPath());
        assertEquals(new ValSetSize.Fraction(0.05), config.valSetSize());
        assertEquals("./outputs/qlora-out", config.outputDir());
        assertEquals(4096, config.sequenceLen());
        assertTrue(config.samplePacking());
        assertTrue(config.padToSequenceLen());
        assertFalse(config.trainOnInputs());
        assertEquals(new SpecialTokens(Optional.of("<s>"), Optional.of("</s>"), Optional.empty(), Optional.of("<unk>")),
                config.specialTokens());

        TrainerSettings trainer = config.trainer();
        assertEquals(Optional.of("qlora"), trainer.string("adapter"));
        assertEquals(Optional.of(true), trainer.bool("load_in_4bit"));
        assertEquals(Optional.of(false), trainer.bool("load_in_8bit"));
        assertEquals(OptionalLong.of(32), trainer.integer("lora_r"));
        assertEquals(OptionalLong.of(16), trainer.integer("lora_alpha"));
        assertEquals(OptionalDouble.of(0.05), trainer.number("lora_dropout"));
        assertEquals(Optional.of(true), trainer.bool("lora_target_linear"));
        assertEquals(List.of(), trainer.strings("lora_target_modules"));
        assertEquals(OptionalLong.of(4), trainer.integer("gradient_accumulation_steps"));
        assertEquals(OptionalLong.of(1), trainer.integer("micro_batch_size"));
        assertEquals(OptionalDouble.of(1.0), trainer.number("num_epochs"));
        assertEquals(Optional.of("paged_adamw_32bit"), trainer.string("optimizer"));
        assertEquals(Optional.of("cosine"), trainer.string("lr_scheduler"));
        assertEquals(OptionalDouble.of(0.0002), trainer.number("learning_rate"));
        assertEquals(Optional.of("auto"), trainer.value("bf16"));
        assertEquals(Optional.of(true), trainer.value("gradient_checkpointing"));
        assertEquals(Optional.of(true), trainer.bool("flash_attention"));
        assertEquals(OptionalLong.of(10), trainer.integer("warmup_steps"));
        assertEquals(OptionalLong.of(4), trainer.integer("evals_per_epoch"));
        assertEquals(OptionalDouble.of(0.0), trainer.number("weight_decay"));
        // Empty keys are absent, not null and not errors.
        assertFalse(trainer.has("fp16"));
        assertFalse(trainer.has("lora_model_dir"));
        assertFalse(trainer.has("fsdp_config"));
        assertEquals(Map.of(), trainer.mapping("fsdp_config"));
        assertFalse(trainer.values().containsValue(null));
    }

    @Test
    void trainerKeysOfEveryKind() {
        TrainConfig config = TrainConfig.parse("""
                base_model: m
                learning_rate: 2e-4
                lora_target_modules: [q_proj, v_proj]
                lora_modules_to_save: embed_tokens
                fsdp: [full_shard, auto_wrap]
                fsdp_config:
                  fsdp_offload_params: true
                  fsdp_transformer_layer_cls_to_wrap: LlamaDecoderLayer
                wandb_log_model: checkpoint
                bf16: yes
                eval_steps: 0.25
                max_steps: 100
                """, Path.of("x.yml"));
        TrainerSettings trainer = config.trainer();
        assertEquals(OptionalDouble.of(2e-4), trainer.number("learning_rate"));
        assertEquals(List.of("q_proj", "v_proj"), trainer.strings("lora_target_modules"));
        assertEquals(List.of("embed_tokens"), trainer.strings("lora_modules_to_save"));
        assertEquals(List.of("full_shard", "auto_wrap"), trainer.strings("fsdp"));
        assertEquals(Map.of("fsdp_offload_params", true, "fsdp_transformer_layer_cls_to_wrap", "LlamaDecoderLayer"),
                trainer.mapping("fsdp_config"));
        assertEquals(Optional.of("checkpoint"), trainer.value("wandb_log_model"));
        assertEquals(Optional.of(true), trainer.value("bf16"));
        assertEquals(OptionalDouble.of(0.25), trainer.number("eval_steps"));
        assertEquals(OptionalLong.of(100), trainer.integer("max_steps"));
        assertEquals(List.of("learning_rate", "lora_target_modules", "lora_modules_to_save", "fsdp", "fsdp_config",
                "wandb_log_model", "bf16", "eval_steps", "max_steps"), List.copyOf(trainer.values().keySet()));
    }

    @Test
    void everyListedKeyIsAccepted() {
        List<String> required = List.of("base_model", "base_model_config", "tokenizer_config", "model_type",
                "tokenizer_type", "datasets", "test_datasets", "val_set_size", "sequence_len", "sample_packing",
                "pad_to_sequence_len", "train_on_inputs", "chat_template", "chat_template_jinja", "special_tokens",
                "dataset_prepared_path", "shuffle_merged_datasets", "seed", "output_dir", "excess_length_strategy",
                "adapter", "load_in_4bit", "load_in_8bit", "lora_r", "lora_alpha", "lora_dropout",
                "lora_target_modules", "lora_target_linear", "peft_use_rslora", "lora_modules_to_save",
                "lora_model_dir", "micro_batch_size", "gradient_accumulation_steps", "num_epochs", "max_steps",
                "optimizer", "learning_rate", "lr_scheduler", "warmup_steps", "warmup_ratio", "weight_decay",
                "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm", "bf16", "fp16", "tf32",
                "gradient_checkpointing", "flash_attention", "sdp_attention", "eval_steps", "evals_per_epoch",
                "logging_steps", "save_steps", "saves_per_epoch", "save_total_limit", "resume_from_checkpoint", "fsdp",
                "fsdp_config", "strict", "wandb_project", "wandb_entity", "wandb_watch", "wandb_name",
                "wandb_log_model", "eval_sample_packing", "dataloader_num_workers", "group_by_length");
        // Every key left empty: accepted and read as absent.
        StringBuilder yaml = new StringBuilder("base_model: m\n");
        for (String key : required) {
            assertTrue(TrainConfig.knownKeys().contains(key), key);
            if (!key.equals("base_model")) yaml.append(key).append(":\n");
        }
        TrainConfig config = TrainConfig.parse(yaml.toString(), Path.of("x.yml"));
        assertEquals(TrainerSettings.EMPTY, config.trainer());
    }
}
