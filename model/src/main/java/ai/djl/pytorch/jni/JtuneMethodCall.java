package ai.djl.pytorch.jni;

/**
 * jtune's single entry into DJL's package-private {@link PyTorchLibrary}.
 *
 * <p>DJL's public {@code IValueUtils.runMethod} always runs a TorchScript method under a no-grad guard;
 * the native call underneath takes a training flag that keeps autograd. This class exists only to pass
 * that flag; everything else about calling kernels lives in {@code dev.jtune.model.engine}.
 */
public final class JtuneMethodCall {
    private JtuneMethodCall() {}

    /**
     * Runs {@code methodName} of a loaded TorchScript module.
     *
     * @param moduleHandle the native module handle ({@code PtSymbolBlock.getHandle()})
     * @param methodName the method to call
     * @param inputs the arguments, as native IValue handles (without {@code self})
     * @param keepAutograd true to record the call in the autograd graph (when grad mode is on)
     * @return the result; the caller owns and must close it
     */
    public static IValue run(long moduleHandle, String methodName, long[] inputs, boolean keepAutograd) {
        return new IValue(
                PyTorchLibrary.LIB.moduleRunMethod(moduleHandle, methodName, inputs, keepAutograd, false));
    }
}
