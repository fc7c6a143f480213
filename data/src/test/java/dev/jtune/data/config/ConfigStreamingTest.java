package dev.jtune.data.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** {@code pretraining_dataset:} and {@code streaming: true}: what is read, and what is refused with file:line:column. */
class ConfigStreamingTest {
    private static final Path FILE = Path.of("configs/x.yml");

    private static String fails(String yaml) {
        return assertThrows(ConfigException.class, () -> TrainConfig.parse(yaml, FILE)).getMessage();
    }

    @Test
    void pretrainingDatasetIsTheOneDatasetPackedIntoMicroBatchRows() {
        TrainConfig c = TrainConfig.parse("""
                base_model: m
                pretraining_dataset:
                  - path: c4.jsonl
                    name: en
                    type: pretrain
                    text_column: body
                    split: train
                sequence_len: 64
                sample_packing: true
                micro_batch_size: 4
                streaming_multipack_buffer_size: 100
                sample_packing_bin_size: 7
                """, FILE);
        assertEquals(List.of(new DatasetConfig("c4.jsonl", new DatasetFormat.Pretrain("body"), Optional.of("train"),
                List.of(), Optional.of("en"), Optional.empty(), false)), c.datasets());
        assertEquals(Optional.of(new Streaming(true, 100, 7, 256)), c.streaming());
        assertEquals(1L, c.trainer().integer("micro_batch_size").getAsLong(), "Axolotl sets micro_batch_size to 1");
        // one info line says what the local read does not reproduce bit for bit
        assertEquals(List.of("info: configs/x.yml:2:1: pretraining_dataset: [...] — Axolotl's streamed path, read from"
                + " the local file: buffers of 100 rows packed into rows of 4 x 64 tokens and at most 7 documents"
                + " (micro_batch_size becomes 1);"
                + " its buffer shuffle and sampler order are drawn by jtune's seeded generator, not numpy's and"
                + " torch's"), c.notes().stream().map(ConfigNote::toString).toList());
        // defaults: type pretrain, text_column text, buffer 10,000 (or the deprecated name), bin size 200
        TrainConfig d = TrainConfig.parse("base_model: m\npretraining_dataset: [{path: p}]\nsample_packing: true\n"
                + "pretrain_multipack_buffer_size: 9\n", FILE);
        assertEquals(DatasetFormat.Pretrain.DEFAULT, d.datasets().get(0).format());
        assertEquals(Optional.of(new Streaming(true, 9, 200, 2048)), d.streaming());
        TrainConfig completion = TrainConfig.parse("base_model: m\npretraining_dataset: [{path: p, type: completion,"
                + " field: body}]\nsample_packing: true\n", FILE);
        assertEquals(new DatasetFormat.Completion("body"), completion.datasets().get(0).format());
        assertEquals(Optional.empty(), TrainConfig.parse("base_model: m\nsample_packing: true\n", FILE).streaming());
    }

    @Test
    void streamingSftReadsTheFirstDataset() {
        TrainConfig c = TrainConfig.parse("base_model: m\ndatasets: [{path: a, type: alpaca}]\nstreaming: true\n"
                + "sample_packing: true\nsequence_len: 32\nmicro_batch_size: 2\n", FILE);
        assertEquals(Optional.of(new Streaming(false, 10_000, 200, 64)), c.streaming());
        assertEquals(Optional.empty(), TrainConfig.parse("base_model: m\nstreaming: false\n", FILE).streaming());
    }

    @Test
    void whatJtuneDoesNotDoIsRefusedAllAtOnce() {
        String message = fails("""
                base_model: m
                datasets: [{path: a, type: alpaca}]
                pretraining_dataset:
                  - path: c4
                    skip: 10
                  - path: other
                pretrain_multipack_attn: false
                val_set_size: 0.1
                """);
        assertEquals("""
                configs/x.yml: 6 problems
                configs/x.yml:2:11: datasets: Axolotl trains on pretraining_dataset alone when it is given and never\
                 reads datasets:; give one of the two
                configs/x.yml:4:3: pretraining_dataset: pretraining_dataset without sample_packing: true is not\
                 supported: jtune implements Axolotl's packed streaming path only (its unpacked one tokenizes rows\
                 without EOS, or without packing); set sample_packing: true
                configs/x.yml:5:5: pretraining_dataset[0]: skip: 10 is not supported: jtune reads the whole local\
                 file; cut the first rows out of the file, or give split: train[N:]
                configs/x.yml:6:5: pretraining_dataset[1]: Axolotl reads only pretraining_dataset[0] (utils/data/sft.py\
                 _extract_pretraining_config) and would ignore this entry; give one entry
                configs/x.yml:7:26: pretrain_multipack_attn: false (packed documents attending to each other) is not\
                 supported: jtune always keeps packed documents apart; leave it out or true
                configs/x.yml:8:15: val_set_size: must be 0 or left out with pretraining_dataset: Axolotl's streamed\
                 path holds out no evaluation rows; give test_datasets""", message);
        contains("configs/x.yml:2:39: pretraining_dataset[0].type: jtune reads pretraining_dataset entries of type"
                + " pretrain", fails("base_model: m\npretraining_dataset: [{path: p, type: alpaca}]\nsample_packing: true\n"));
        contains("configs/x.yml:2:28: datasets[0].type: type: pretrain is read in pretraining_dataset:",
                fails("base_model: m\ndatasets: [{path: p, type: pretrain}]\n"));
        contains("configs/x.yml:2:11: datasets: streaming: true with sample_packing reads only datasets[0]",
                fails("base_model: m\ndatasets: [{path: a, type: alpaca}, {path: b, type: alpaca}]\n"
                + "streaming: true\nsample_packing: true\n"));
        contains("configs/x.yml:3:12: streaming: streaming: true without sample_packing: true is not supported",
                fails("base_model: m\ndatasets: [{path: a, type: alpaca}]\nstreaming: true\n"));
    }

    private static void contains(String expected, String message) {
        assertTrue(message.contains(expected), message);
    }
}
