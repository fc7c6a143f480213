#!/usr/bin/env bash
# Runs the CUDA attention check (CudaAttentionCheckTest) on a machine with an NVIDIA GPU: flash attention and
# its variable-length form for packed rows against the CPU mask path, outputs and gradients, bf16/fp16/fp32.
# Needs the cu128 libtorch: the Maven artifact ai.djl.pytorch:pytorch-native-cu128 in the local repository
# (./mvnw -Pcuda dependency:go-offline once, with network) or PYTORCH_LIBRARY_PATH at a libtorch 2.7.1 cu128.
# Fails (does not skip) when no GPU is visible.
set -euo pipefail
cd "$(dirname "$0")/../.."
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
export PYTORCH_FLAVOR="${PYTORCH_FLAVOR:-cu128}"
./mvnw -q ${MAVEN_OFFLINE:--o} -Pcuda -pl model -am test -Dtest='CudaAttentionCheckTest,KernelVarlenTest,KernelAttentionTest' \
  -Dsurefire.failIfNoSpecifiedTests=false
report=model/target/surefire-reports/TEST-dev.jtune.model.engine.CudaAttentionCheckTest.xml
if grep -q 'skipped="0"' "$report"; then
  echo "OK: CUDA attention matches the CPU mask path"
else
  echo "SKIPPED: DJL saw no GPU (check nvidia-smi, PYTORCH_FLAVOR, PYTORCH_LIBRARY_PATH)" >&2
  exit 1
fi
