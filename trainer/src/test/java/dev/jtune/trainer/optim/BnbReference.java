package dev.jtune.trainer.optim;

/**
 * bitsandbytes' AdamW update, element by element in plain Java float arithmetic: a second transcription of
 * csrc/kernels.cu {@code kOptimizerStatic8bit2StateBlockwise} (ADAM, blocks of 256, one element per thread, with
 * {@code quantize_2D}) and {@code kOptimizer32bit2State} (ADAM), independent of the TorchScript kernels it checks.
 * Java's float operations are correctly rounded and never fused, as the port intends.
 */
final class BnbReference {
    private BnbReference() {}

    /** The kernels' float scalars for one step. */
    record Scalars(float b1, float b2, float omb1, float omb2, float epsC2, float stepSize, float decay, float wd) {
        static Scalars of(double beta1, double beta2, double eps, double lr, double weightDecay, long step) {
            float b1 = (float) beta1;
            float b2 = (float) beta2;
            float e = (float) eps;
            float l = (float) lr;
            float w = (float) weightDecay;
            float correction1 = 1.0f - (float) Math.pow(b1, step);
            float correction2 = (float) Math.sqrt(1.0f - (float) Math.pow(b2, step));
            float stepSize = (-l * correction2) / correction1;
            return new Scalars(b1, b2, 1.0f - b1, 1.0f - b2, correction2 * e, stepSize, 1.0f - l * w, w);
        }
    }

    /** {@code quantize_2D<SIGNED>}: binary search from pivot 127, then the nearer neighbour (a tie keeps the pivot). */
    static int quantize2d(boolean signed, float[] code, float x) {
        int pivot = 127;
        int upperPivot = 255;
        int lowerPivot = 0;
        float lower = signed ? -1.0f : 0.0f;
        float upper = 1.0f;
        float val = code[pivot];
        for (int i = 64; i > 0; i >>= 1) {
            if (x > val) {
                lowerPivot = pivot;
                lower = val;
                pivot += i;
            } else {
                upperPivot = pivot;
                upper = val;
                pivot -= i;
            }
            val = code[pivot];
        }
        if (x > val) {
            float midpoint = (upper + val) * 0.5f;
            return x > midpoint ? upperPivot : pivot;
        }
        float midpoint = (lower + val) * 0.5f;
        return x < midpoint ? lowerPivot : pivot;
    }

    /** The state1 sign correction: a code whose value has the other sign than {@code s} moves one step (uint8 wrap). */
    static int signFix(int q, float[] code, float s) {
        if (signbit(code[q]) != signbit(s)) {
            q = s > 0.0f ? q + 1 : q - 1;
        }
        return q & 0xff;
    }

    private static boolean signbit(float x) {
        return (Float.floatToRawIntBits(x) & 0x80000000) != 0;
    }

    /** One 8-bit update of a tensor in place: codes {@code c1}, {@code c2} (0..255), one absmax per 256 block. */
    static void update8bit(float[] p, float[] g, int[] c1, int[] c2, float[] absmax1, float[] absmax2, float[] code1,
            float[] code2, Scalars s) {
        int n = p.length;
        float[] s1 = new float[256];
        float[] s2 = new float[256];
        boolean[] finite = new boolean[256];
        for (int blk = 0; blk < absmax1.length; blk++) {
            int lo = blk * 256;
            int hi = Math.min(n, lo + 256);
            float new1 = -Float.MAX_VALUE;
            float new2 = -Float.MAX_VALUE;
            for (int j = 0; j < 256; j++) {
                int i = lo + j;
                // Lanes past the end load gradient 0, state1 code 128, state2 code 0 (BlockLoad's defaults).
                float gv = i < hi ? g[i] : 0.0f;
                int q1 = i < hi ? c1[i] : 128;
                int q2 = i < hi ? c2[i] : 0;
                finite[j] = Float.isFinite(gv);
                if (finite[j]) {
                    float v2 = code2[q2] * absmax2[blk];
                    s2[j] = v2 * s.b2() + (s.omb2() * gv) * gv;
                    float v1 = code1[q1] * absmax1[blk];
                    s1[j] = v1 * s.b1() + s.omb1() * gv;
                } else {
                    s1[j] = 0.0f;
                    s2[j] = 0.0f;
                }
                new1 = Math.max(new1, Math.abs(s1[j]));
                new2 = Math.max(new2, Math.abs(s2[j]));
            }
            absmax1[blk] = new1;
            absmax2[blk] = new2;
            for (int j = 0; j < hi - lo; j++) {
                int i = lo + j;
                if (finite[j]) {
                    float v = p[i] + s.stepSize() * (s1[j] / ((float) Math.sqrt(s2[j]) + s.epsC2()));
                    if (s.wd() > 0.0f) {
                        v = v * s.decay();
                    }
                    p[i] = v;
                }
                c1[i] = signFix(quantize2d(true, code1, s1[j] / new1), code1, s1[j]);
                c2[i] = quantize2d(false, code2, s2[j] / new2);
            }
        }
    }

    /** One 32-bit update in place. */
    static void update32bit(float[] p, float[] g, float[] m, float[] v, Scalars s) {
        for (int i = 0; i < p.length; i++) {
            m[i] = m[i] * s.b1() + s.omb1() * g[i];
            v[i] = v[i] * s.b2() + s.omb2() * (g[i] * g[i]);
            float x = p[i] + s.stepSize() * (m[i] / ((float) Math.sqrt(v[i]) + s.epsC2()));
            if (s.wd() > 0.0f) {
                x = x * s.decay();
            }
            p[i] = x;
        }
    }
}
