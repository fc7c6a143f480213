#!/usr/bin/env bash
# jtune launcher: builds what is missing (once, quietly), then runs the jtune command line.
#   ./launch.sh --help            the verbs
#   ./launch.sh VERB --help       a verb's options
# Environment: JAVA_HOME (a JDK 25; found automatically under /usr/lib/jvm if unset or older),
# JTUNE_JAVA_OPTS (extra JVM options, e.g. -Xmx16g), JTUNE_DEBUG=1 (stack traces),
# JTUNE_MAVEN_OPTS (extra Maven options for the build, e.g. -Pcuda), JTUNE_JEMALLOC=0 (keep glibc's malloc).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

java_major() { "$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'; }

find_jdk() {
  local candidate
  for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-25* /usr/lib/jvm/*25*; do
    if [[ -n "$candidate" && -x "$candidate/bin/java" ]] && (( $(java_major "$candidate") >= 25 )); then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

if ! JAVA_HOME="$(find_jdk)"; then
  echo "jtune: needs a JDK 25 (Temurin 25 recommended); set JAVA_HOME to one" >&2
  exit 1
fi
export JAVA_HOME
export DJL_OFFLINE=true

jar="$root/trainer/target/jtune.jar"
stale() {
  [[ ! -f "$jar" || ! -d "$root/trainer/target/lib" ]] && return 0
  [[ -n "$(find "$root/pom.xml" "$root"/*/pom.xml "$root"/*/src/main -newer "$jar" -print -quit 2>/dev/null)" ]]
}

if stale; then
  log="$root/trainer/target/build.log"
  mkdir -p "$root/trainer/target"
  echo "jtune: building (once; log in trainer/target/build.log) ..." >&2
  # shellcheck disable=SC2086
  if ! (cd "$root" && ./mvnw -q -B -DskipTests ${JTUNE_MAVEN_OPTS:-} package) >"$log" 2>&1; then
    echo "jtune: build failed; the end of $log:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
fi

# jemalloc when installed (tools/jemalloc.sh says why).
source "$root/tools/jemalloc.sh"

# shellcheck disable=SC2086
exec "$JAVA_HOME/bin/java" -Xss4m --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Dorg.slf4j.simpleLogger.log.ai.djl.util.cuda.CudaUtils=error \
  ${JTUNE_JAVA_OPTS:-} \
  -cp "$jar:$root/trainer/target/lib/*" dev.jtune.trainer.cli.Main "$@"
