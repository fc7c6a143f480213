"""Writes length_grouped.json: transformers' get_length_grouped_indices (trainer_pt_utils.py) on a few cases, with
the torch.randperm it drew, so that jtune's LengthGrouped can be checked on the same permutation.

Run with the interop venv (tools/interop/check.sh builds it): python make_fixture.py > length_grouped.json
"""
import json
import random

import torch
import transformers
from transformers.trainer_pt_utils import get_length_grouped_indices

cases = []
for n, batch, seed, spread in [(10, 2, 0, 8), (37, 3, 1, 5), (200, 2, 2, 30), (1000, 4, 3, 200), (513, 1, 4, 3),
                               (64, 16, 5, 50), (2500, 2, 6, 400)]:
    rnd = random.Random(seed)
    lengths = [1 + rnd.randrange(spread) for _ in range(n)]  # spread small: many ties, which sorted() keeps in order
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g).tolist()
    g = torch.Generator().manual_seed(seed)
    out = get_length_grouped_indices(lengths, batch, generator=g)
    cases.append({"lengths": lengths, "batch_size": batch, "randperm": perm, "indices": [int(i) for i in out]})
print(json.dumps({"transformers": transformers.__version__, "torch": torch.__version__, "cases": cases}))
