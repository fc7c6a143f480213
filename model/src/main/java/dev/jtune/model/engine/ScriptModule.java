package dev.jtune.model.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.pytorch.jni.JtuneMethodCall;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * A TorchScript module compiled from source, whose methods are called on DJL tensors with autograd kept.
 *
 * <p>Arguments may be {@link NDArray}, {@code long}/{@code int}, {@code double}/{@code float},
 * {@code boolean}, {@code long[]} or {@code double[]}. Results are attached to the manager of the
 * first tensor argument (or the module's manager if there is none).
 */
public final class ScriptModule implements AutoCloseable {
    private final PtSymbolBlock block;
    private final PtNDManager manager;
    private final String name;

    private ScriptModule(PtSymbolBlock block, PtNDManager manager, String name) {
        this.block = block;
        this.manager = manager;
        this.name = name;
    }

    /**
     * Compiles {@code source}, which defines TorchScript class {@code className}, and loads it.
     *
     * @param manager owns the module's native handle
     * @param className the class in the source (e.g. {@code Ops})
     * @param source TorchScript source in the serialized-code dialect ({@code self: __torch__.Ops})
     * @param name a name for error messages (e.g. the resource file)
     */
    public static ScriptModule compile(NDManager manager, String className, String source, String name) {
        Torch.engine();
        byte[] archive = TorchScriptArchive.pack(className, source);
        PtNDManager pt = (PtNDManager) manager;
        try {
            PtSymbolBlock block = JniUtils.loadModule(pt, new ByteArrayInputStream(archive), true, false);
            return new ScriptModule(block, pt, name);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (RuntimeException e) {
            throw new EngineUnavailableException(
                    "TorchScript kernels " + name + " failed to compile: " + e.getMessage(), e);
        }
    }

    /** Calls a method that returns one tensor. */
    public NDArray call(String method, Object... args) {
        NDList out = callAll(method, args);
        if (out.size() != 1) {
            out.close();
            throw new IllegalStateException(name + "." + method + " returned " + out.size() + " tensors, expected 1");
        }
        return out.get(0);
    }

    /** Calls a method that returns an int. */
    public long callLong(String method, Object... args) {
        return invoke(method, args, IValue::toLong);
    }

    /** Calls a method that returns a tensor, or a tuple or list of tensors. */
    public NDList callAll(String method, Object... args) {
        PtNDManager target = manager;
        for (Object arg : args) {
            if (arg instanceof NDArray a) {
                target = (PtNDManager) a.getManager();
                break;
            }
        }
        PtNDManager owner = target;
        return invoke(method, args, value -> toNDList(value, owner));
    }

    /** Converts the arguments, runs the method, reads the result, and frees every IValue on the way out. */
    private <T> T invoke(String method, Object[] args, Function<IValue, T> read) {
        List<IValue> inputs = new ArrayList<>(args.length);
        try {
            for (Object arg : args) {
                inputs.add(toIValue(arg));
            }
            long[] handles = inputs.stream().mapToLong(IValue::getHandle).toArray();
            IValue value;
            try {
                // libtorch's switch is per thread: apply the process-wide choice on this one (Torch.setGraphOptimization).
                Torch.applyGraphOptimization();
                value = JtuneMethodCall.run(block.getHandle(), method, handles, true);
            } catch (RuntimeException e) {
                throw new KernelException(name + "." + method + ": " + e.getMessage(), e);
            }
            try (value) {
                return read.apply(value);
            }
        } finally {
            inputs.forEach(IValue::close);
        }
    }

    private static NDList toNDList(IValue value, PtNDManager target) {
        if (value.isTensor()) {
            return new NDList(value.toTensor(target));
        }
        if (value.isTensorList()) {
            return new NDList(value.toTensorArray(target));
        }
        if (value.isTuple() || value.isList()) {
            IValue[] items = value.isTuple() ? value.toIValueTuple() : value.toIValueArray();
            NDList list = new NDList(items.length);
            try {
                for (IValue item : items) {
                    list.addAll(toNDList(item, target));
                }
            } finally {
                for (IValue item : items) {
                    item.close();
                }
            }
            return list;
        }
        throw new IllegalStateException("kernel returned a " + value.getType() + ", expected tensors");
    }

    private static IValue toIValue(Object arg) {
        return switch (arg) {
            case PtNDArray a -> IValue.from(a);
            case NDArray a -> throw new IllegalArgumentException("not a PyTorch tensor: " + a.getClass().getName());
            // A List[Tensor] argument.
            case NDList l -> IValue.listFrom(l.stream().map(PtNDArray.class::cast).toArray(PtNDArray[]::new));
            case Long l -> IValue.from(l.longValue());
            case Integer i -> IValue.from(i.longValue());
            case Double d -> IValue.from(d.doubleValue());
            case Float f -> IValue.from(f.doubleValue());
            case Boolean b -> IValue.from(b.booleanValue());
            case long[] l -> IValue.listFrom(l);
            case double[] d -> IValue.listFrom(d);
            case null -> throw new IllegalArgumentException("null kernel argument");
            default -> throw new IllegalArgumentException("unsupported kernel argument " + arg.getClass().getName());
        };
    }

    @Override
    public void close() {
        block.close();
    }
}
