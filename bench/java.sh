# Sourced by the bench scripts: picks a JDK 25 into JAVA_HOME and builds the bench module (and what it needs).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64; do
  if [[ -n "$candidate" && -x "$candidate/bin/java" ]] && "$candidate/bin/java" -version 2>&1 | grep -q '"25'; then
    export JAVA_HOME="$candidate"; break
  fi
done
(cd "$root" && ./mvnw -q -o -B -pl bench -am -DskipTests package) >"$root/bench/build.log" 2>&1 \
  || { tail -n 40 "$root/bench/build.log" >&2; exit 1; }
rm -f "$root/bench/build.log"
export DJL_OFFLINE=true
# jemalloc for the JVMs these scripts start (tools/jemalloc.sh); a Python reference they start must not inherit it
# (TrainStepBench removes it; scripts running Python themselves use `env -u LD_PRELOAD`).
source "$root/tools/jemalloc.sh"
