#!/usr/bin/env python3
"""Lists every key of Axolotl's config schema at a pinned commit, read from its pydantic models.

Reads the source with `git show` from a mirror of github.com/axolotl-ai-cloud/axolotl (no import: the
models need torch and transformers) and walks the class bodies with `ast`:

  top      every field of AxolotlInputConfig and the mixins it derives from (recursively), under the name
           a user writes (a Field(alias=...) wins over the attribute name), plus the fields of every
           integration's args.py (a plugin's keys sit at the top level of the YAML once it is listed);
  dataset  every field of SFTDataset (one `datasets:` entry of an SFT config);
  dataset-rl  the fields of the other entry schemas (DPODataset, KTODataset, StepwiseSupervisedDataset,
           SyntheticDataset) that SFTDataset lacks: keys of preference/reward/benchmark data.

Usage: tools/axolotl/schema_keys.py /path/to/axolotl/git/dir [commit] > data/src/test/resources/axolotl/schema-keys.txt
"""
import ast
import re
import subprocess
import sys

COMMIT = "067b021c8b87a9e5e380b9173c704cf7340e30f5"  # main, 2026-07-24 (#3859); keep in step with AxolotlKeys.COMMIT


def git(repo, *args):
    return subprocess.run(["git", "--git-dir", repo, *args], check=True, capture_output=True, text=True).stdout


def classes_in(source, origin):
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef):
            bases = [b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else None
                     for b in node.bases]
            fields = []
            for stmt in node.body:
                if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                    continue
                name = stmt.target.id
                if name == "model_config" or "ClassVar" in ast.unparse(stmt.annotation):
                    continue
                alias = None
                if isinstance(stmt.value, ast.Call) and ast.unparse(stmt.value.func).endswith("Field"):
                    for kw in stmt.value.keywords:
                        if kw.arg == "alias" and isinstance(kw.value, ast.Constant):
                            alias = kw.value.value
                fields.append(alias or name)
            out[node.name] = (bases, fields, origin)
    return out


def main():
    repo = sys.argv[1]
    commit = sys.argv[2] if len(sys.argv) > 2 else COMMIT
    files = git(repo, "ls-tree", "-r", "--name-only", commit, "src/axolotl").split()
    schema_files = [f for f in files if f.startswith("src/axolotl/utils/schemas/") and f.endswith(".py")]
    plugin_files = [f for f in files if f.startswith("src/axolotl/integrations/") and f.endswith("/args.py")]
    classes = {}
    for f in schema_files:
        classes.update(classes_in(git(repo, "show", f"{commit}:{f}"), f))

    def fields_of(name, seen):
        if name not in classes or name in seen:
            return []
        seen.add(name)
        bases, fields, origin = classes[name]
        out = []
        for base in bases:
            out += fields_of(base, seen)
        return out + [(f, name) for f in fields]

    print(f"# Axolotl config schema keys at github.com/axolotl-ai-cloud/axolotl@{commit}")
    print("# written by tools/axolotl/schema_keys.py; columns: scope key defining-class")
    seen_top = set()
    for key, owner in fields_of("AxolotlInputConfig", set()):
        if key not in seen_top:
            seen_top.add(key)
            print(f"top {key} {owner}")
    # A plugin's keys: the class its get_input_args() names (the others in args.py are nested values).
    plugins = sorted({f.split("/")[3] for f in plugin_files})
    for plugin in plugins:
        sources = "".join(git(repo, "show", f"{commit}:{f}") for f in files
                          if f.startswith(f"src/axolotl/integrations/{plugin}/") and f.endswith(".py"))
        named = re.findall(r'def get_input_args\(self\)[^:]*:\s*(?:"""[^"]*"""\s*)?return "([\w.]+)"', sources)
        args = f"src/axolotl/integrations/{plugin}/args.py"
        if not named or args not in plugin_files:
            continue
        before = dict(classes)
        classes.update(classes_in(git(repo, "show", f"{commit}:{args}"), args))
        for key, owner in fields_of(named[0].rsplit(".", 1)[1], set()):
            if key not in seen_top:
                seen_top.add(key)
                print(f"top {key} plugin:{plugin}.{owner}")
        classes.clear()
        classes.update(before)
    sft = []
    for key, owner in fields_of("SFTDataset", set()):
        sft.append(key)
        print(f"dataset {key} {owner}")
    for other in ("DPODataset", "KTODataset", "StepwiseSupervisedDataset", "SyntheticDataset"):
        for key, owner in fields_of(other, set()):
            if key not in sft:
                sft.append(key)
                print(f"dataset-rl {key} {owner}")


if __name__ == "__main__":
    main()
