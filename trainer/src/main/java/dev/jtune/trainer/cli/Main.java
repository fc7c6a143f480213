package dev.jtune.trainer.cli;

import dev.jtune.data.config.Suggest;
import dev.jtune.trainer.launch.LaunchOptions;
import dev.jtune.trainer.launch.Launcher;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/** The {@code jtune} command line (what {@code ./launch.sh} runs): one verb per job. */
public final class Main {
    /** A verb: its one-line summary, its usage text, and what it does. */
    private record Verb(String summary, String usage, Command command) {}

    @FunctionalInterface
    interface Command {
        /** Runs the verb; returns the process exit code. */
        int run(String[] args) throws Exception;
    }

    private static final Map<String, Verb> VERBS = new LinkedHashMap<>();

    static {
        VERBS.put("init-model", new Verb(
                "write a randomly initialised Llama checkpoint in Hugging Face layout",
                InitModelCommand.USAGE, InitModelCommand::run));
        VERBS.put("score", new Verb(
                "log-likelihood of texts or completions under a model (JSONL in, JSONL out)",
                ScoreCommand.USAGE, ScoreCommand::run));
        VERBS.put("train", new Verb(
                "fine-tune a model as a config says (LoRA, QLoRA or full); ./launch.sh CONFIG.yml does the same",
                TrainCommand.USAGE, TrainCommand::run));
        VERBS.put("preprocess", new Verb(
                "tokenize, mask and pack a config's datasets into the prepared-dataset cache; print a report",
                PreprocessCommand.USAGE, PreprocessCommand::run));
        VERBS.put("merge-lora", new Verb(
                "fold a LoRA adapter into its base model (a Hugging Face model directory)",
                MergeLoraCommand.USAGE, MergeLoraCommand::run));
        VERBS.put("inference", new Verb(
                "generate replies with a config's model (KV cache, greedy or sampled, chat template applied)",
                InferenceCommand.USAGE, InferenceCommand::run));
    }

    private Main() {}

    public static void main(String[] argv) {
        Launcher.exitWithLauncher(System.getenv());
        System.exit(run(argv, System.out, System.err));
    }

    /** Runs the command line and returns the exit code: 0 ok, 1 failure, 2 bad usage. */
    static int run(String[] argv, PrintStream out, PrintStream err) {
        if (argv.length == 0 || argv[0].equals("--help") || argv[0].equals("-h") || argv[0].equals("help")) {
            out.print(help());
            return argv.length == 0 ? 2 : 0;
        }
        if (LaunchOptions.isLauncherCommand(argv)) {
            // ./launch.sh --nproc-per-node N ... CONFIG.yml: torchrun's front, workers run the rest.
            return Launcher.run(argv, out, err);
        }
        String name = argv[0];
        if (!VERBS.containsKey(name) && (name.endsWith(".yml") || name.endsWith(".yaml"))) {
            // ./launch.sh CONFIG.yml is train, as axolotl's one-command use.
            String[] withVerb = new String[argv.length + 1];
            withVerb[0] = "train";
            System.arraycopy(argv, 0, withVerb, 1, argv.length);
            return run(withVerb, out, err);
        }
        Verb verb = VERBS.get(name);
        if (verb == null) {
            err.println("jtune: unknown verb '" + name + "'" + suggestVerb(name));
            err.print(help());
            return 2;
        }
        String[] rest = Arrays.copyOfRange(argv, 1, argv.length);
        if (Arrays.asList(rest).contains("--help")) {
            out.print(verb.usage());
            return 0;
        }
        try {
            return verb.command().run(rest);
        } catch (Args.UsageException e) {
            err.println("jtune " + e.getMessage());
            err.print(verb.usage());
            return 2;
        } catch (Exception e) {
            err.println("jtune " + name + ": error: " + message(e));
            if (System.getenv("JTUNE_DEBUG") != null) {
                e.printStackTrace(err);
            }
            return 1;
        }
    }

    private static String message(Throwable e) {
        String m = e.getMessage();
        return m == null || m.isBlank() ? e.getClass().getSimpleName() : m.strip();
    }

    private static String suggestVerb(String name) {
        return Suggest.didYouMean(name, VERBS.keySet());
    }

    static String help() {
        var sb = new StringBuilder();
        sb.append("jtune — LLM fine-tuning on the JVM\n\n");
        sb.append("usage: ./launch.sh VERB [options]     (./launch.sh VERB --help for a verb's options)\n\n");
        sb.append("verbs:\n");
        VERBS.forEach((n, v) -> sb.append(String.format("  %-12s %s%n", n, v.summary())));
        sb.append("\ndistributed: ./launch.sh --nproc-per-node N [--nnodes M --node-rank R --master-addr HOST"
                + " --master-port PORT] [--max-restarts K] CONFIG.yml\n");
        sb.append("\nenvironment: JTUNE_DEBUG=1 prints stack traces; DJL_OFFLINE is always true (nothing downloads).\n");
        return sb.toString();
    }
}
