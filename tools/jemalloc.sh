# Sourced by launch.sh and bench/java.sh: preloads jemalloc when it is installed (Debian/Ubuntu package libjemalloc2).
# libtorch allocates and frees every activation of a step; jemalloc reuses that memory, while glibc (which jtune tells
# to map blocks of 1 MiB or more afresh, to keep the peak low) zeroes new pages each time: a 1.1B QLoRA step took half
# the time with it, at the same peak memory (bench/README, "Native memory"). JTUNE_JEMALLOC=0 keeps glibc's malloc; an
# LD_PRELOAD of the user's own is left as it is.
# MALLOC_CONF=oversize_threshold:0,dirty_decay_ms:1000 (unless MALLOC_CONF is set already): by default jemalloc serves
# blocks of 8 MiB or more from an arena that returns them to the system as soon as they are freed, so a step's large
# tensors fault their pages in again every step (100k page faults a step in bench/train-step.sh, 31M in two 7B steps);
# with the threshold at 0 they are reused like smaller blocks. Freed pages then go back after ~1 s instead of 10 s, which
# keeps the 7B QLoRA peak at 5.5 GiB (6.3 GiB with 10 s); a run resident in under 5% of the machine's memory gets the
# 10 s back once loaded (Trainer). Steps 1.3-1.6x faster (bench/README, "jemalloc's oversize arena").
if [[ "${JTUNE_JEMALLOC:-1}" != 0 && -z "${LD_PRELOAD:-}" ]]; then
  for jtune_jemalloc in /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /usr/lib/aarch64-linux-gnu/libjemalloc.so.2 \
                        /usr/lib64/libjemalloc.so.2 /usr/lib/libjemalloc.so.2 /usr/local/lib/libjemalloc.so.2; do
    if [[ -f "$jtune_jemalloc" ]]; then
      export LD_PRELOAD="$jtune_jemalloc" MALLOC_CONF="${MALLOC_CONF:-oversize_threshold:0,dirty_decay_ms:1000}"
      break
    fi
  done
  unset jtune_jemalloc
fi
