package dev.jtune.trainer.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsFile;
import dev.jtune.model.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import dev.jtune.trainer.dist.ProcessGroup;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Predicate;

/**
 * {@code torch.optim.AdamW} with its defaults (not fused, not foreach, amsgrad=False, maximize=False):
 * per-parameter step counters and fp32 moments {@code exp_avg}, {@code exp_avg_sq}, bias corrections, weight
 * decay decoupled from the gradient ({@code p *= 1 - lr*wd} before the update) and {@code eps} added after
 * {@code sqrt(v)/sqrt(bias_correction2)}. The arithmetic is transcribed from torch/optim/adam.py
 * {@code _single_tensor_adam} (which adamw.py uses with {@code decoupled_weight_decay=True}) and runs as the
 * same aten ops in one TorchScript call per parameter.
 *
 * <p>Weight-decay groups: parameters for which {@code decays} is false get weight decay 0 (transformers'
 * {@code get_decay_parameter_names} exempts biases and norm weights; for LoRA every adapter matrix decays).
 */
public final class AdamW implements Optimizer {
    /**
     * Whose AdamW: its update arithmetic and its state layout. {@link #checkpointName} is the optimizer name written
     * in checkpoints (transformers' {@code optim} name of the variant).
     */
    public enum Variant {
        /** {@code torch.optim.AdamW} (adamw_torch, adamw_torch_fused): fp32 moments. */
        TORCH("adamw_torch"),
        /** bitsandbytes' AdamW with {@code optim_bits=32} (paged_adamw_32bit): fp32 moments, {@link Bnb}'s update. */
        BNB_32BIT("paged_adamw_32bit"),
        /**
         * bitsandbytes' AdamW with {@code optim_bits=8} (adamw_bnb_8bit, adamw_8bit, paged_adamw_8bit): blockwise
         * 8-bit moments for tensors of at least {@link Bnb#MIN_8BIT_SIZE} elements (see {@link Bnb}).
         */
        BNB_8BIT("adamw_bnb_8bit"),
        /**
         * torchao's AdamW8bit (adamw_torch_8bit): blockwise 8-bit moments (same dynamic maps, blocks of 256, its own
         * rounding) for tensors of at least 4096 values that are a whole number of blocks; torch's AdamW arithmetic
         * order with lerp (see {@code torchao_adamw_math} in optim.torchscript.py).
         */
        TORCHAO_8BIT("adamw_torch_8bit"),
        /**
         * torchao's AdamW4bit (adamw_torch_4bit): the same update with 4-bit moments (torchao/optim/subclass_4bit.py:
         * blocks of 128, two codes a byte; signed map {@code create_dynamic_map(True, 3, 4)}, unsigned map
         * {@code linspace(0, 1, 17)[1:]}; plain blockwise absmax scaling, no rank-1 normalization) for tensors of at
         * least 4096 values that are a whole number of blocks, fp32 moments for the others.
         */
        TORCHAO_4BIT("adamw_torch_4bit"),
        /** Axolotl's Muon ({@link Muon}): this AdamW (torch's arithmetic) for embeddings and vectors only. */
        MUON("muon");

        /**
         * Whether a tensor of {@code n} values keeps quantized (8-bit, or 4-bit for {@link #TORCHAO_4BIT}) state
         * under this variant.
         */
        public boolean eightBit(long n) {
            return switch (this) {
                case TORCH, BNB_32BIT, MUON -> false;
                case BNB_8BIT -> Bnb.eightBit(n);
                case TORCHAO_8BIT, TORCHAO_4BIT -> n >= Bnb.MIN_8BIT_SIZE && n % block() == 0;
            };
        }

        /**
         * Whether the update of bf16 parameters (bf16 full fine-tuning in place) is ported: torch's per-op bf16
         * AdamW, torchao's fp32 update rounded once, bitsandbytes' kernels with {@code T = __nv_bfloat16}. A variant
         * added later stays refused there until its bf16 update is.
         */
        public boolean updatesBf16Weights() {
            return switch (this) {
                case TORCH, BNB_32BIT, BNB_8BIT, TORCHAO_8BIT -> true;
                default -> false;
            };
        }

        /**
         * Whether the update of fp16 parameters ({@code float16: true} full fine-tuning in place) is ported: torch's
         * per-op fp16 AdamW, torchao's fp32 update rounded once (8-bit and 4-bit state), bitsandbytes' kernels with
         * {@code T = half}; each checked against its fixture.
         */
        public boolean updatesFp16Weights() {
            return this != MUON;
        }

        /** Whether some tensors may keep quantized state (blocks of {@link #block()}). */
        public boolean quantizes() {
            return this == BNB_8BIT || this == TORCHAO_8BIT || this == TORCHAO_4BIT;
        }

        /** Values per quantization block (one fp32 scale each): 128 for torchao's 4-bit state, else 256. */
        public int block() {
            return this == TORCHAO_4BIT ? 128 : Bnb.BLOCK;
        }

        /** Blocks of {@link #block()} covering {@code n} values (the last one may be partial in bitsandbytes). */
        public long blocks(long n) {
            return (n + block() - 1) / block();
        }

        /** Values stored per code byte: 2 for 4-bit state (packed pairs), else 1. */
        int perByte() {
            return this == TORCHAO_4BIT ? 2 : 1;
        }

        private final String checkpointName;

        Variant(String checkpointName) {
            this.checkpointName = checkpointName;
        }

        public String checkpointName() {
            return checkpointName;
        }
    }

    /** The optimizer's hyperparameters, torch's names; defaults {@link #DEFAULTS}. */
    public record Hyper(double beta1, double beta2, double eps, double weightDecay, Variant variant) {
        public Hyper {
            if (!(beta1 >= 0 && beta1 < 1)) throw new IllegalArgumentException("adam_beta1 must be in [0, 1), got " + beta1);
            if (!(beta2 >= 0 && beta2 < 1)) throw new IllegalArgumentException("adam_beta2 must be in [0, 1), got " + beta2);
            if (!(eps >= 0)) throw new IllegalArgumentException("adam_epsilon must be >= 0, got " + eps);
            if (!(weightDecay >= 0)) throw new IllegalArgumentException("weight_decay must be >= 0, got " + weightDecay);
            Objects.requireNonNull(variant, "variant");
        }

        /** {@code torch.optim.AdamW}'s hyperparameters. */
        public Hyper(double beta1, double beta2, double eps, double weightDecay) {
            this(beta1, beta2, eps, weightDecay, Variant.TORCH);
        }

        /** The same values for another variant. */
        public Hyper with(Variant other) {
            return new Hyper(beta1, beta2, eps, weightDecay, other);
        }
    }

    /** transformers' TrainingArguments defaults: betas (0.9, 0.999), eps 1e-8, weight decay 0. */
    public static final Hyper DEFAULTS = new Hyper(0.9, 0.999, 1e-8, 0.0);

    private static final ObjectMapper JSON = new ObjectMapper();

    /** A tensor's 8-bit state: uint8 codes of both moments and one fp32 absmax per block of 256. */
    private record Quantized(NDArray state1, NDArray state2, NDArray absmax1, NDArray absmax2) {}

    private final Map<String, NDArray> params;
    private final Map<String, Boolean> decays;
    private final Hyper hyper;
    private final NDManager manager;
    private final ProcessGroup group;
    private final Map<String, NDArray> expAvg = new LinkedHashMap<>();
    private final Map<String, NDArray> expAvgSq = new LinkedHashMap<>();
    private final Map<String, Quantized> quantized = new LinkedHashMap<>();
    private final Map<String, Long> steps = new LinkedHashMap<>();
    /** Tensors treated as without gradient ({@link #freeze}). */
    private Predicate<String> frozen = name -> false;
    /** bitsandbytes' signed and unsigned dynamic maps (8-bit variant only). */
    private final NDArray code1;
    private final NDArray code2;

    /**
     * @param params trainable fp32 tensors by name, in a stable order
     * @param decays which parameters get weight decay
     * @param parent the moments live in a sub-manager of this, freed by {@link #close()}
     */
    public AdamW(Map<String, NDArray> params, Hyper hyper, Predicate<String> decays, NDManager parent) {
        this(params, hyper, decays, ProcessGroup.single(), parent);
    }

    /**
     * An AdamW whose every rank of {@code group} holds the whole tensors and state (data parallel): gradients are
     * summed by an all-reduce, and every rank makes the same update.
     */
    public AdamW(Map<String, NDArray> params, Hyper hyper, Predicate<String> decays, ProcessGroup group,
            NDManager parent) {
        this(params, hyper, decays, group, parent, null);
    }

    /**
     * @param wholeSize the element count of the whole tensor each entry of {@code params} is (a piece of), which
     *     decides 8-bit or 32-bit state ({@link Bnb#MIN_8BIT_SIZE}); null: the entries are whole tensors. A piece
     *     of a tensor with 8-bit state must start at a multiple of {@link Bnb#BLOCK} of that tensor.
     */
    AdamW(Map<String, NDArray> params, Hyper hyper, Predicate<String> decays, ProcessGroup group, NDManager parent,
            Map<String, Long> wholeSize) {
        this.group = Objects.requireNonNull(group, "group");
        this.params = new LinkedHashMap<>(params);
        this.hyper = Objects.requireNonNull(hyper, "hyper");
        this.decays = new LinkedHashMap<>();
        this.manager = parent.newSubManager();
        boolean quantizes = hyper.variant().quantizes();
        boolean four = hyper.variant() == Variant.TORCHAO_4BIT;
        this.code1 = !quantizes ? null : four ? OptimKernels.get().torchaoQmap4(true, manager)
                : OptimKernels.get().dynamicMap(true, manager);
        this.code2 = !quantizes ? null : four ? OptimKernels.get().torchaoQmap4(false, manager)
                : OptimKernels.get().dynamicMap(false, manager);
        for (var e : this.params.entrySet()) {
            String name = e.getKey();
            Shape shape = e.getValue().getShape();
            this.decays.put(name, decays.test(name));
            long whole = wholeSize == null ? shape.size() : wholeSize.get(name);
            if (hyper.variant().eightBit(whole)) {
                Shape blocks = new Shape(hyper.variant().blocks(shape.size()));
                // 8-bit codes in the tensor's shape; 4-bit codes flat, two a byte (torchao's OptimState4bit.codes).
                Shape codes = four ? new Shape(shape.size() / 2) : shape;
                quantized.put(name, new Quantized(manager.zeros(codes, DataType.UINT8),
                        manager.zeros(codes, DataType.UINT8), manager.zeros(blocks), manager.zeros(blocks)));
            } else {
                // zeros_like(param): a bf16 parameter (bf16 full fine-tuning) has bf16 moments, as in torch.optim
                // and torchao (_AdamBase._new_buffer); bitsandbytes keeps fp32 state (Optimizer2State.init_state).
                boolean bnb = hyper.variant() == Variant.BNB_32BIT || hyper.variant() == Variant.BNB_8BIT;
                expAvg.put(name, bnb ? manager.zeros(shape) : Tensors.zerosLike(e.getValue(), manager));
                expAvgSq.put(name, bnb ? manager.zeros(shape) : Tensors.zerosLike(e.getValue(), manager));
            }
            steps.put(name, 0L);
        }
    }

    public Hyper hyper() {
        return hyper;
    }

    /** Whether {@code name} gets weight decay. */
    public boolean decays(String name) {
        return decays.get(name);
    }

    /** Whether {@code name} keeps 8-bit state (bitsandbytes' 8-bit variant, tensor of at least 4096 elements). */
    public boolean eightBit(String name) {
        return quantized.containsKey(name);
    }

    /**
     * Bytes of optimizer state held: 8 per element of fp32 moments; 2 per element plus 8 per block of 256 for
     * 8-bit moments; 1 per element plus 8 per block of 128 for 4-bit moments (the step counters and the maps left
     * out).
     */
    public long stateBytes() {
        long bytes = 0;
        for (NDArray m : expAvg.values()) bytes += 4 * m.size();
        for (NDArray v : expAvgSq.values()) bytes += 4 * v.size();
        for (Quantized q : quantized.values()) {
            bytes += q.state1().size() + q.state2().size() + 4 * (q.absmax1().size() + q.absmax2().size());
        }
        return bytes;
    }

    @Override
    public void reduceGradients() {
        if (group.worldSize() > 1) {
            Replicas.allReduceGradients(group, params.values(), manager);
        }
    }

    @Override
    public void scaleGradients(double factor) {
        Gradients.scale(active(), factor);
    }

    @Override
    public boolean gradientsFinite() {
        return Gradients.allFinite(active());
    }

    @Override
    public double clipGradients(double maxNorm) {
        return GradClipping.clip(active(), maxNorm, manager);
    }

    @Override
    public void freeze(Predicate<String> frozen) {
        this.frozen = Objects.requireNonNull(frozen, "frozen");
    }

    /** The tensors not frozen, in order. */
    private List<NDArray> active() {
        return params.entrySet().stream().filter(e -> !frozen.test(e.getKey())).map(Map.Entry::getValue).toList();
    }

    @Override
    public void zeroGradients() {
        Gradients.zero(params.values());
    }

    @Override
    public void checkReplicas(long step) {
        Replicas.checkIdentical(group, params.values(), step, manager);
    }

    @Override
    public StateWriter gatherState() {
        return this::save;
    }

    /** One update with learning rate {@code lr}, from the gradients now in the parameters; those without one are skipped. */
    @Override
    public void step(double lr) {
        List<String> names = new ArrayList<>(params.keySet());
        List<NDArray> grads = Gradients.open(params.values());
        try {
            Map<String, NDArray> byName = new LinkedHashMap<>();
            for (int i = 0; i < names.size(); i++) {
                byName.put(names.get(i), frozen.test(names.get(i)) ? null : grads.get(i));
            }
            step(lr, byName);
        } finally {
            Gradients.close(grads);
        }
    }

    /**
     * One update with learning rate {@code lr} from the given gradients by parameter name (same shapes as the
     * parameters; absent or null: that parameter is skipped) — for gradients that are not the parameters' own
     * {@code .grad}, such as a sharded optimizer's reduce-scattered chunk.
     */
    public void step(double lr, Map<String, NDArray> grads) {
        OptimKernels k = OptimKernels.get();
        for (var e : params.entrySet()) {
            String name = e.getKey();
            NDArray param = e.getValue();
            NDArray g = grads.get(name);
            if (g == null) {
                continue;
            }
            long step = steps.get(name) + 1;
            steps.put(name, step);
            double wd = decays.get(name) ? hyper.weightDecay() : 0.0;
            switch (hyper.variant()) {
                case TORCH, MUON -> {
                    // Python float arithmetic, as in _single_tensor_adam.
                    double biasCorrection1 = 1 - Math.pow(hyper.beta1(), step);
                    double biasCorrection2 = 1 - Math.pow(hyper.beta2(), step);
                    double stepSize = lr / biasCorrection1;
                    double biasCorrection2Sqrt = Math.sqrt(biasCorrection2);
                    k.adamw(param, g, expAvg.get(name), expAvgSq.get(name), 1 - lr * wd, wd != 0,
                            1 - hyper.beta1(), hyper.beta2(), 1 - hyper.beta2(), stepSize, biasCorrection2Sqrt,
                            hyper.eps());
                }
                case TORCHAO_8BIT -> {
                    Quantized q = quantized.get(name);
                    if (q != null) {
                        k.torchaoAdamW8bit(param, g, q.state1(), q.state2(), q.absmax1(), q.absmax2(), code1, code2, lr,
                                wd, hyper.beta1(), hyper.beta2(), hyper.eps(), step);
                    } else {
                        k.torchaoAdamW32(param, g, expAvg.get(name), expAvgSq.get(name), lr, wd, hyper.beta1(),
                                hyper.beta2(), hyper.eps(), step);
                    }
                }
                case TORCHAO_4BIT -> {
                    Quantized q = quantized.get(name);
                    if (q != null) {
                        k.torchaoAdamW4bit(param, g, q.state1(), q.state2(), q.absmax1(), q.absmax2(), code1, code2, lr,
                                wd, hyper.beta1(), hyper.beta2(), hyper.eps(), step, Bnb.CHUNK);
                    } else {
                        k.torchaoAdamW32(param, g, expAvg.get(name), expAvgSq.get(name), lr, wd, hyper.beta1(),
                                hyper.beta2(), hyper.eps(), step);
                    }
                }
                case BNB_32BIT, BNB_8BIT -> {
                    Bnb.Scalars sc = Bnb.Scalars.of(hyper.beta1(), hyper.beta2(), hyper.eps(), lr, wd, step);
                    Quantized q = quantized.get(name);
                    if (q != null) {
                        k.bnbAdam8bit(param, g, q.state1(), q.state2(), q.absmax1(), q.absmax2(), code1, code2, sc);
                    } else {
                        k.bnbAdam32(param, g, expAvg.get(name), expAvgSq.get(name), sc);
                    }
                }
            }
        }
    }

    /**
     * Axolotl's ReLoRA {@code reset_optimizer} on the state of {@code name}: the state tensors Axolotl's key list
     * reaches are pruned, the step count stays. Its keys are {@code exp_avg}, {@code exp_avg_sq}, and for an optimizer
     * name containing {@code 8bit} also {@code state1}, {@code state2}: torch's AdamW prunes its two moments;
     * bitsandbytes' 8-bit AdamW its {@code state1}/{@code state2} (the uint8 codes of an 8-bit tensor, or fp32
     * moments of a small one); bitsandbytes' 32-bit AdamW ({@code paged_adamw_32bit}) keeps its state under
     * {@code state1}/{@code state2}, which that list does not name: nothing is pruned.
     *
     * @param magnitude magnitude pruning (torch.quantile threshold); else random: each value zeroed when a uniform
     *     draw of {@code random} is at most {@code ratio} ({@code torch.rand(...) > ratio} keeps it)
     * @return {zeroed values, values looked at}
     * @throws UnsupportedOperationException for torchao's optimizers (Axolotl's pruning fails on their state tensors)
     */
    public long[] pruneForReLora(String name, boolean magnitude, double ratio, java.util.SplittableRandom random) {
        List<NDArray> targets = new ArrayList<>();
        boolean codes = false;
        switch (hyper.variant()) {
            case TORCH -> targets.addAll(List.of(expAvg.get(name), expAvgSq.get(name)));
            case BNB_32BIT -> {
                return new long[] {0, 0};
            }
            case BNB_8BIT -> {
                Quantized q = quantized.get(name);
                if (q != null) {
                    targets.addAll(List.of(q.state1(), q.state2()));
                    codes = true;
                } else {
                    targets.addAll(List.of(expAvg.get(name), expAvgSq.get(name)));
                }
            }
            case TORCHAO_8BIT, TORCHAO_4BIT -> throw new UnsupportedOperationException("relora with optimizer: "
                    + hyper.variant().checkpointName() + " is not supported: Axolotl's pruning cannot run on torchao's"
                    + " quantized state tensors");
        }
        long zeros = 0;
        long total = 0;
        for (NDArray t : targets) {
            if (magnitude) {
                OptimKernels.get().reloraMagnitudePrune(t, ratio, codes);
            } else if (codes) {
                byte[] b = t.toByteArray();
                float[] f = new float[b.length];
                for (int i = 0; i < b.length; i++) f[i] = random.nextDouble() > ratio ? b[i] & 0xff : 0;
                overwriteCodes(t, f, name);
            } else {
                float[] f = Tensors.floats(t);
                for (int i = 0; i < f.length; i++) if (!(random.nextDouble() > ratio)) f[i] = 0;
                Tensors.overwrite(t, f, name);
            }
            if (codes) {
                for (byte b : t.toByteArray()) if (b == 0) zeros++;
            } else {
                for (float v : Tensors.floats(t)) if (v == 0) zeros++;
            }
            total += t.size();
        }
        return new long[] {zeros, total};
    }

    /** Sets the fp32 state of {@code name} (values row-major, as {@link #save} writes them). */
    public void restore(String name, float[] expAvgValues, float[] expAvgSqValues, long step) {
        restoreChannels(name, new float[][] {expAvgValues, expAvgSqValues}, step);
    }

    /**
     * The state of {@code name} as per-element float channels, the form in which a sharded optimizer gathers it:
     * fp32 moments {@code {exp_avg, exp_avg_sq}}; 8-bit moments {@code {state1 codes, state2 codes, absmax1 of the
     * element's block, absmax2 of the element's block}} (codes 0..255 as floats, exact; 4-bit state: each element's
     * own code 0..15, unpacked).
     */
    float[][] channels(String name) {
        Quantized q = quantized.get(name);
        if (q == null) {
            return new float[][] {Tensors.floats(expAvg.get(name)), Tensors.floats(expAvgSq.get(name))};
        }
        int n = Math.toIntExact(params.get(name).getShape().size());
        int block = hyper.variant().block();
        int per = hyper.variant().perByte();
        return new float[][] {unpack(codes(q.state1()), per), unpack(codes(q.state2()), per),
            perElement(q.absmax1().toFloatArray(), n, block), perElement(q.absmax2().toFloatArray(), n, block)};
    }

    /** Restores {@code name} from {@link #channels}' form. */
    void restoreChannels(String name, float[][] channels, long step) {
        if (!params.containsKey(name)) {
            throw new IllegalArgumentException("no parameter " + name);
        }
        Quantized q = quantized.get(name);
        if (q == null) {
            Tensors.overwrite(expAvg.get(name), channels[0], name + ".exp_avg");
            Tensors.overwrite(expAvgSq.get(name), channels[1], name + ".exp_avg_sq");
        } else {
            int per = hyper.variant().perByte();
            int block = hyper.variant().block();
            overwriteCodes(q.state1(), pack(channels[0], per), name + ".state1");
            overwriteCodes(q.state2(), pack(channels[1], per), name + ".state2");
            Tensors.overwrite(q.absmax1(), perBlock(channels[2], block), name + ".absmax1");
            Tensors.overwrite(q.absmax2(), perBlock(channels[3], block), name + ".absmax2");
        }
        steps.put(name, step);
    }

    private static float[] codes(NDArray u8) {
        byte[] b = u8.toByteArray();
        float[] out = new float[b.length];
        for (int i = 0; i < b.length; i++) out[i] = b[i] & 0xff;
        return out;
    }

    private static void overwriteCodes(NDArray target, float[] codes, String what) {
        if (target.size() != codes.length) {
            throw new IllegalArgumentException(what + ": expected " + target.size() + " codes, got " + codes.length);
        }
        byte[] b = new byte[codes.length];
        for (int i = 0; i < b.length; i++) {
            float c = codes[i];
            if (!(c >= 0 && c <= 255 && c == Math.rint(c))) {
                throw new IllegalArgumentException(what + ": code " + c + " at " + i + " is not a uint8");
            }
            b[i] = (byte) (int) c;
        }
        try (NDManager scratch = target.getManager().newSubManager()) {
            NDArray src = scratch.create(java.nio.ByteBuffer.wrap(b), target.getShape(), DataType.UINT8);
            OptimKernels.get().copyInto(target, src);
        }
    }

    private static float[] perElement(float[] perBlock, int n, int block) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) out[i] = perBlock[i / block];
        return out;
    }

    private static float[] perBlock(float[] perElement, int block) {
        float[] out = new float[Math.toIntExact((perElement.length + block - 1) / block)];
        for (int b = 0; b < out.length; b++) out[b] = perElement[b * block];
        return out;
    }

    /** Per-element codes from stored bytes: as they are ({@code per} 1), or two 4-bit codes a byte, high first. */
    private static float[] unpack(float[] bytes, int per) {
        if (per == 1) return bytes;
        float[] out = new float[bytes.length * 2];
        for (int i = 0; i < bytes.length; i++) {
            int b = (int) bytes[i];
            out[2 * i] = b >> 4;
            out[2 * i + 1] = b & 15;
        }
        return out;
    }

    /** The stored bytes of per-element codes: {@link #unpack}'s inverse (codes of 4-bit state must be 0..15). */
    private static float[] pack(float[] codes, int per) {
        if (per == 1) return codes;
        float[] out = new float[codes.length / 2];
        for (int i = 0; i < out.length; i++) {
            float hi = codes[2 * i];
            float lo = codes[2 * i + 1];
            if (!(hi >= 0 && hi <= 15 && lo >= 0 && lo <= 15)) {
                throw new IllegalArgumentException("4-bit code out of 0..15 at " + 2 * i + ": " + hi + ", " + lo);
            }
            out[i] = hi * 16 + lo;
        }
        return out;
    }

    /** The step count of {@code name} (torch's {@code state[p]["step"]}). */
    public long step(String name) {
        return steps.get(name);
    }

    /** First moments (fp32 state) by parameter name (live tensors; do not close); 8-bit tensors are absent. */
    public Map<String, NDArray> expAvg() {
        return java.util.Collections.unmodifiableMap(expAvg);
    }

    /** Second moments (fp32 state) by parameter name (live tensors; do not close); 8-bit tensors are absent. */
    public Map<String, NDArray> expAvgSq() {
        return java.util.Collections.unmodifiableMap(expAvgSq);
    }

    /**
     * The 8-bit state of {@code name} as bitsandbytes keeps it: {@code state1}, {@code state2} (uint8 codes,
     * 0..255), {@code absmax1}, {@code absmax2} (one per block of 256), copies. For 4-bit state as torchao keeps it:
     * the packed code bytes (two values a byte, the first in the high nibble) and one scale per block of 128.
     */
    public QuantizedState quantizedState(String name) {
        Quantized q = quantized.get(name);
        if (q == null) {
            throw new IllegalArgumentException(name + " has no 8-bit state");
        }
        return new QuantizedState(toInts(q.state1()), toInts(q.state2()), q.absmax1().toFloatArray(),
                q.absmax2().toFloatArray());
    }

    /** A copy of a tensor's 8-bit state (codes unsigned). */
    public record QuantizedState(int[] state1, int[] state2, float[] absmax1, float[] absmax2) {}

    private static int[] toInts(NDArray u8) {
        byte[] b = u8.toByteArray();
        int[] out = new int[b.length];
        for (int i = 0; i < b.length; i++) out[i] = b[i] & 0xff;
        return out;
    }

    /**
     * Writes the state as safetensors (layout in {@link #write}). Atomic (temp file + rename).
     */
    public void save(Path file) {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        Map<String, float[][]> channels = new LinkedHashMap<>();
        for (String name : params.keySet()) {
            shapes.put(name, params.get(name).getShape().getShape());
            channels.put(name, channels(name));
        }
        write(file, hyper, shapes, channels, steps);
    }

    /** Writes an fp32 state in {@link #save}'s format from plain arrays. */
    public static void write(Path file, Hyper hyper, Map<String, long[]> shapes, Map<String, float[]> expAvg,
            Map<String, float[]> expAvgSq, Map<String, Long> steps) {
        Map<String, float[][]> channels = new LinkedHashMap<>();
        for (String name : shapes.keySet()) {
            channels.put(name, new float[][] {expAvg.get(name), expAvgSq.get(name)});
        }
        write(file, hyper, shapes, channels, steps);
    }

    /**
     * Writes a state from {@link #channels}' form (e.g. gathered from the shards of ranks). Layout: per tensor with
     * fp32 moments {@code <name>.exp_avg} and {@code <name>.exp_avg_sq} (F32, the tensor's shape); per tensor with
     * 8-bit moments bitsandbytes' state names: {@code <name>.state1}, {@code <name>.state2} (U8 codes, the tensor's
     * shape; state1 indexes the signed dynamic map, state2 the unsigned one) and {@code <name>.absmax1},
     * {@code <name>.absmax2} (F32, one per block of 256 elements). Metadata: {@code optimizer} (the variant's
     * name), {@code steps} (JSON name → step), {@code betas}, {@code eps}, {@code weight_decay}, and for the 8-bit
     * variant {@code block_size} and {@code min_8bit_size}.
     */
    static void write(Path file, Hyper hyper, Map<String, long[]> shapes, Map<String, float[][]> channels,
            Map<String, Long> steps) {
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        ObjectNode stepJson = JSON.createObjectNode();
        for (String name : shapes.keySet()) {
            long[] shape = shapes.get(name);
            float[][] c = channels.get(name);
            if (c.length == 2) {
                entries.add(SafetensorsWriter.Entry.ofFloats(name + ".exp_avg", shape, c[0], SafetensorsDtype.F32));
                entries.add(SafetensorsWriter.Entry.ofFloats(name + ".exp_avg_sq", shape, c[1], SafetensorsDtype.F32));
            } else {
                int block = hyper.variant().block();
                int per = hyper.variant().perByte();
                long[] blocks = {hyper.variant().blocks(c[0].length)};
                // 4-bit codes are written packed and flat, as torchao's OptimState4bit.codes.
                long[] codeShape = per == 1 ? shape : new long[] {c[0].length / 2};
                entries.add(SafetensorsWriter.Entry.ofBytes(name + ".state1", SafetensorsDtype.U8, codeShape,
                        bytes(pack(c[0], per))));
                entries.add(SafetensorsWriter.Entry.ofBytes(name + ".state2", SafetensorsDtype.U8, codeShape,
                        bytes(pack(c[1], per))));
                entries.add(SafetensorsWriter.Entry.ofFloats(name + ".absmax1", blocks, perBlock(c[2], block),
                        SafetensorsDtype.F32));
                entries.add(SafetensorsWriter.Entry.ofFloats(name + ".absmax2", blocks, perBlock(c[3], block),
                        SafetensorsDtype.F32));
            }
            stepJson.put(name, steps.get(name));
        }
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("optimizer", hyper.variant().checkpointName());
        meta.put("steps", stepJson.toString());
        meta.put("betas", "[" + hyper.beta1() + ", " + hyper.beta2() + "]");
        meta.put("eps", Double.toString(hyper.eps()));
        meta.put("weight_decay", Double.toString(hyper.weightDecay()));
        if (hyper.variant().quantizes()) {
            meta.put("block_size", Integer.toString(hyper.variant().block()));
            meta.put("min_8bit_size", Long.toString(Bnb.MIN_8BIT_SIZE));
        }
        SafetensorsWriter.write(file, entries, meta);
    }

    private static byte[] bytes(float[] codes) {
        byte[] b = new byte[codes.length];
        for (int i = 0; i < b.length; i++) b[i] = (byte) (int) codes[i];
        return b;
    }

    /**
     * The whole state of {@code name} in {@link #channels}' form, read from a file {@link #write} wrote with the
     * same variant.
     *
     * @param eightBit whether the tensor has quantized state in this optimizer
     * @param variant the optimizer's variant (block size, 4-bit packing)
     * @throws IllegalArgumentException naming the file and the tensor that is missing or of the wrong size
     */
    static float[][] readChannels(SafetensorsFile in, Path file, String name, long numel, boolean eightBit,
            Variant variant) {
        int block = variant.block();
        int per = variant.perByte();
        List<String> suffixes = eightBit ? List.of(".state1", ".state2", ".absmax1", ".absmax2")
                : List.of(".exp_avg", ".exp_avg_sq");
        for (String suffix : suffixes) {
            if (!in.contains(name + suffix)) {
                throw new IllegalArgumentException(file + ": missing tensor " + name + suffix
                        + " (was the checkpoint made with other trainable parameters or another optimizer?)");
            }
        }
        float[][] out = new float[suffixes.size()][];
        for (int i = 0; i < suffixes.size(); i++) {
            String what = name + suffixes.get(i);
            float[] values = switch (suffixes.get(i)) {
                case ".state1", ".state2" -> {
                    int[] codes = in.ints(what);
                    float[] f = new float[codes.length];
                    for (int j = 0; j < f.length; j++) f[j] = codes[j];
                    yield unpack(f, per);
                }
                case ".absmax1", ".absmax2" -> {
                    float[] blocks = in.floats(what);
                    if (blocks.length != variant.blocks(numel)) {
                        throw new IllegalArgumentException(file + ": " + what + " has " + blocks.length
                                + " values, expected " + variant.blocks(numel) + " (one per block of " + block + ")");
                    }
                    yield perElement(blocks, Math.toIntExact(numel), block);
                }
                default -> in.floats(what);
            };
            if (values.length != numel) {
                throw new IllegalArgumentException(file + ": " + what + " has " + values.length + " values, the parameter "
                        + numel);
            }
            out[i] = values;
        }
        return out;
    }

    /** Checks that a state file was written by this variant of the optimizer. */
    static void checkVariant(SafetensorsFile in, Path file, Hyper hyper) {
        String written = in.metadata().getOrDefault("optimizer", Variant.TORCH.checkpointName());
        if (!written.equals(hyper.variant().checkpointName())) {
            throw new IllegalArgumentException(file + ": the optimizer state was written by " + written
                    + ", this run uses " + hyper.variant().checkpointName()
                    + "; resume with the optimizer the checkpoint was made with");
        }
    }

    /** The step counts of a state file's metadata. */
    static JsonNode readSteps(SafetensorsFile in, Path file) throws IOException {
        String stepText = in.metadata().get("steps");
        if (stepText == null) {
            throw new IllegalArgumentException(file + ": no 'steps' in the metadata; not a jtune optimizer state");
        }
        return JSON.readTree(stepText);
    }

    static long stepOf(JsonNode stepJson, Path file, String name) {
        JsonNode s = stepJson.get(name);
        if (s == null || !s.canConvertToLong()) {
            throw new IllegalArgumentException(file + ": metadata 'steps' lacks " + name);
        }
        return s.asLong();
    }

    /**
     * Restores the state written by {@link #save}.
     *
     * @throws IllegalArgumentException naming the file and the tensor that is missing or of the wrong size, or the
     *     optimizer that wrote it when it is another variant
     */
    @Override
    public void load(Path file) {
        try (SafetensorsFile in = SafetensorsFile.open(file)) {
            JsonNode stepJson = readSteps(in, file);
            checkVariant(in, file, hyper);
            for (String name : params.keySet()) {
                float[][] c = readChannels(in, file, name, params.get(name).getShape().size(), eightBit(name),
                        hyper.variant());
                restoreChannels(name, c, stepOf(stepJson, file, name));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        manager.close();
    }
}
