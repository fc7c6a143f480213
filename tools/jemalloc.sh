# Sourced by launch.sh and bench/java.sh: preloads jemalloc when it is installed (Debian/Ubuntu package libjemalloc2).
# libtorch allocates and frees every activation of a step; jemalloc reuses that memory, while glibc (which jtune tells
# to map blocks of 1 MiB or more afresh, to keep the peak low) zeroes new pages each time: a 1.1B QLoRA step took half
# the time with it, at the same peak memory (bench/README, "Native memory"). JTUNE_JEMALLOC=0 keeps glibc's malloc; an
# LD_PRELOAD of the user's own is left as it is.
if [[ "${JTUNE_JEMALLOC:-1}" != 0 && -z "${LD_PRELOAD:-}" ]]; then
  for jtune_jemalloc in /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /usr/lib/aarch64-linux-gnu/libjemalloc.so.2 \
                        /usr/lib64/libjemalloc.so.2 /usr/lib/libjemalloc.so.2 /usr/local/lib/libjemalloc.so.2; do
    if [[ -f "$jtune_jemalloc" ]]; then export LD_PRELOAD="$jtune_jemalloc"; break; fi
  done
  unset jtune_jemalloc
fi
