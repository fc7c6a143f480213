package dev.jtune.bench;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import dev.jtune.data.template.JinjaChatTemplate;
import dev.jtune.data.template.Message;
import dev.jtune.data.template.RenderedChat;
import dev.jtune.data.template.TokenizedChat;
import dev.jtune.data.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Multi-turn chat_template preprocessing (issue 11): ROWS synthetic conversations (a system line, then 3 user /
 * assistant turns of ~15 / ~50 words) with the Llama-3.1 chat template. Times, single-threaded: (1) rendering the
 * text with jtune's interpreter, (2) the same with Jinjava (the renderer it replaced), (3) the whole per-row
 * work of a chat_template dataset: render, find the turns (one probe render per message), tokenize and mask.
 *
 *   java ... dev.jtune.bench.ChatTemplateBench TOKENIZER_DIR TEMPLATE_FILE [ROWS]
 */
public final class ChatTemplateBench {
    private ChatTemplateBench() {}

    public static void main(String[] args) throws Exception {
        Path tokDir = Path.of(args[0]);
        String source = Files.readString(Path.of(args[1]));
        int rows = args.length > 2 ? Integer.parseInt(args[2]) : 52_000;
        List<List<Message>> convs = conversations(rows);
        try (Tokenizer tok = Tokenizer.load(tokDir)) {
            JinjaChatTemplate t = new JinjaChatTemplate("bench", source, tok.bosToken().orElse(null),
                    tok.eosToken().orElse(null), List.of(), Map.of("date_string", "26 Jul 2024"));
            // warm-up: a tenth of the rows through each path
            int warm = Math.max(1, rows / 10);
            for (int i = 0; i < warm; i++) {
                t.renderText(convs.get(i), false);
            }
            java.lang.management.ThreadMXBean cpu = java.lang.management.ManagementFactory.getThreadMXBean();
            long c0 = cpu.getCurrentThreadCpuTime();
            long t0 = System.nanoTime();
            long chars = 0;
            for (List<Message> c : convs) {
                chars += t.renderText(c, false).length();
            }
            double own = (System.nanoTime() - t0) / 1e9;
            double ownCpu = (cpu.getCurrentThreadCpuTime() - c0) / 1e9;

            Jinjava jinjava = new Jinjava(JinjavaConfig.newBuilder().withTrimBlocks(true).withLstripBlocks(true).build());
            String jsrc = source.endsWith("\n") ? source.substring(0, source.length() - 1) : source;
            int jrows = Math.min(rows, 10_000);
            for (int i = 0; i < Math.min(warm, jrows); i++) {
                jinjava.render(jsrc, bindings(convs.get(i), tok));
            }
            long c1 = cpu.getCurrentThreadCpuTime();
            long t1 = System.nanoTime();
            int same = 0;
            for (int i = 0; i < jrows; i++) {
                if (jinjava.render(jsrc, bindings(convs.get(i), tok)).equals(t.renderText(convs.get(i), false))) {
                    same++;
                }
            }
            double jin = (System.nanoTime() - t1) / 1e9;
            double jinCpu = (cpu.getCurrentThreadCpuTime() - c1) / 1e9;
            // the loop above also rendered with jtune once per row: take that time out
            long c2 = cpu.getCurrentThreadCpuTime();
            long t2 = System.nanoTime();
            for (int i = 0; i < jrows; i++) {
                t.renderText(convs.get(i), false);
            }
            jin -= (System.nanoTime() - t2) / 1e9;
            jinCpu -= (cpu.getCurrentThreadCpuTime() - c2) / 1e9;

            for (int i = 0; i < warm; i++) {
                TokenizedChat.ofSpans(tok, t.render(convs.get(i), false), x -> x.trained(x.isAssistant(), x.isAssistant()));
            }
            long c3 = cpu.getCurrentThreadCpuTime();
            long t3 = System.nanoTime();
            long tokens = 0;
            for (List<Message> c : convs) {
                RenderedChat chat = t.render(c, false);
                tokens += TokenizedChat.ofSpans(tok, chat, x -> x.trained(x.isAssistant(), x.isAssistant())).size();
            }
            double full = (System.nanoTime() - t3) / 1e9;
            double fullCpu = (cpu.getCurrentThreadCpuTime() - c3) / 1e9;
            // the tokenizer alone on the same texts: the floor under the whole per-row work
            long c4 = cpu.getCurrentThreadCpuTime();
            for (List<Message> c : convs) {
                tok.encode(t.renderText(c, false), false);
            }
            double tokCpu = (cpu.getCurrentThreadCpuTime() - c4) / 1e9 - ownCpu;
            System.out.printf("rows %d (system + 3 user/assistant turns), Llama-3.1 template, %d chars rendered%n", rows, chars);
            System.out.printf("render text, jtune interpreter: %.2f s (cpu %.2f s), %.0f rows/s (per cpu second %.0f)%n",
                    own, ownCpu, rows / own, rows / ownCpu);
            System.out.printf("render text, Jinjava:           %.2f s (cpu %.2f s) for %d rows, %.0f rows/s (per cpu second %.0f);"
                    + " same text as jtune: %d of %d%n", jin, jinCpu, jrows, jrows / jin, jrows / jinCpu, same, jrows);
            System.out.printf("render + turns + tokenize + mask: %.2f s (cpu %.2f s), %.0f rows/s (per cpu second %.0f), %d tokens%n",
                    full, fullCpu, rows / full, rows / fullCpu, tokens);
            System.out.printf("of which tokenizing the text once (tokenizer alone): cpu %.2f s%n", tokCpu);
        }
    }

    private static Map<String, Object> bindings(List<Message> c, Tokenizer tok) {
        List<Map<String, Object>> list = new ArrayList<>();
        for (Message m : c) {
            list.add(new HashMap<>(m.toMap()));
        }
        Map<String, Object> b = new HashMap<>();
        b.put("messages", list);
        b.put("bos_token", tok.bosToken().orElse(null));
        b.put("eos_token", tok.eosToken().orElse(null));
        b.put("add_generation_prompt", false);
        b.put("date_string", "26 Jul 2024");
        return b;
    }

    private static final String[] WORDS = ("the model learns to answer questions about data, code and language with "
            + "short clear steps while keeping each reply grounded in facts from the prompt and its context").split(" ");

    private static List<List<Message>> conversations(int rows) {
        Random r = new Random(11);
        List<List<Message>> out = new ArrayList<>(rows);
        for (int i = 0; i < rows; i++) {
            List<Message> c = new ArrayList<>();
            c.add(Message.system("You are a helpful assistant."));
            for (int turn = 0; turn < 3; turn++) {
                c.add(Message.user(words(r, 10 + r.nextInt(10)) + "?"));
                c.add(Message.assistant(words(r, 35 + r.nextInt(30)) + "."));
            }
            out.add(c);
        }
        return out;
    }

    private static String words(Random r, int n) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < n; i++) {
            sb.append(i == 0 ? "" : " ").append(WORDS[r.nextInt(WORDS.length)]);
        }
        return sb.toString();
    }
}
