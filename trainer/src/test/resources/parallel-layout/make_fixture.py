#!/usr/bin/env python3
"""Axolotl's world layout for a grid of parallelism degrees, as Axolotl itself derives it: the fixture of
ParallelLayoutTest.

Runs Axolotl's own `_get_parallel_config_kwargs` (src/axolotl/utils/distributed.py at the commit AxolotlKeys pins,
read from its git history and executed as written), then accelerate's check that Axolotl patches in
(src/axolotl/monkeypatch/accelerate/parallelism_config.py, `_validate_accelerator`: total_size = dp_replicate x
dp_shard x tp x cp must equal num_processes). Axolotl's world is jtune's process count times tp x cp (jtune runs a
tensor/context-parallel group's work in one process), so each case records the processes, the degrees as a config
declares them (null: unset), and either the data-parallel layout Axolotl builds (dp_replicate, dp_shard) or\nits error.

Usage: python3 make_fixture.py AXOLOTL_GIT_DIR > axolotl_layouts.json
"""
import ast
import itertools
import json
import subprocess
import sys

COMMIT = "067b021c8b87a9e5e380b9173c704cf7340e30f5"  # AxolotlKeys.COMMIT
source = subprocess.run(["git", "-C", sys.argv[1], "show", f"{COMMIT}:src/axolotl/utils/distributed.py"],
                        check=True, capture_output=True, text=True).stdout
fn = next(n for n in ast.parse(source).body
          if isinstance(n, ast.FunctionDef) and n.name == "_get_parallel_config_kwargs")
namespace = {"get_world_size": lambda: WORLD}
exec(compile(ast.Module(body=[fn], type_ignores=[]), "distributed.py", "exec"), namespace)
layout = namespace["_get_parallel_config_kwargs"]

cases = []
for processes, tp, cp, shard, rep, fsdp in itertools.product(range(1, 9), [None, 2], [None, 2, 8],
                                                             [None, 1, 2, 4], [None, 1, 2], [False, True]):
    WORLD = processes * (tp or 1) * (cp or 1)
    case = [processes, tp, cp, shard, rep, fsdp]
    try:
        kw = layout(WORLD, tp, cp, shard, rep, fsdp, None)
        sizes = {k: kw.get(k, 1) for k in ("dp_replicate_size", "dp_shard_size", "tp_size", "cp_size")}
        total = sizes["dp_replicate_size"] * sizes["dp_shard_size"] * sizes["tp_size"] * sizes["cp_size"]
        if kw and total != WORLD:  # accelerate's ParallelismConfig._validate_accelerator (Axolotl's patch)
            raise ValueError(f"ParallelismConfig total_size ({total}) does not match num_processes ({WORLD})")
        if not kw:  # no ParallelismConfig: plain data parallel over every process
            sizes = {"dp_replicate_size": 1, "dp_shard_size": WORLD}
        case += [sizes["dp_replicate_size"], sizes["dp_shard_size"], None]
    except ValueError as e:
        case += [None, None, str(e).splitlines()[0]]
    cases.append(case)
print("{\"source\": " + json.dumps(f"axolotl-ai-cloud/axolotl@{COMMIT} src/axolotl/utils/distributed.py"
                                   " _get_parallel_config_kwargs + accelerate's total_size check") + ",")
print("\"columns\": [\"processes\", \"tensor_parallel_size\", \"context_parallel_size\", \"dp_shard_size\","
      " \"dp_replicate_size\", \"fsdp\", \"dp_replicate\", \"dp_shard\", \"error\"],")
print("\"cases\": [\n" + ",\n".join(json.dumps(c) for c in cases) + "]}")
