#!/usr/bin/env python3
"""Writes trainer/src/test/resources/fixtures/jagged_lr_expected.json for JaggedRestartsTest: the learning rate of
each optimizer step under Axolotl's JaggedLRRestartScheduler (jagged_restart_steps, ReLoRA's schedule), its class
copied verbatim from axolotl-ai-cloud/axolotl at 067b021c8b87a9e5e380b9173c704cf7340e30f5
(src/axolotl/utils/schedulers.py), wrapped around transformers' get_cosine_schedule_with_warmup as Axolotl's
SchedulerMixin.create_scheduler does, and stepped as transformers' Trainer steps it (optimizer.step(), then
lr_scheduler.step(); the lr of a step is the param group's lr before its optimizer.step()).

    target/interop-venv/bin/python tools/reference/jagged_lr_expected.py
"""
import json
import os
from typing import Any, Sequence

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from transformers import get_cosine_schedule_with_warmup


# --- src/axolotl/utils/schedulers.py (verbatim)
class JaggedLRRestartScheduler(LRScheduler):
    """Wraps another scheduler to apply per-lora-restart learning rate warmups."""

    def __init__(
        self,
        optimizer: Optimizer,
        inner_schedule: LRScheduler,
        jagged_restart_steps: int,
        jagged_restart_warmup_steps: int,
        jagged_restart_anneal_steps: int = 1,
        min_lr_scale: float = 0.001,
    ) -> None:
        self.inner_schedule = inner_schedule
        self.restarts_steps = jagged_restart_steps
        self.warmup_steps = jagged_restart_warmup_steps
        self.anneal_steps = jagged_restart_anneal_steps
        self.min_lr_scale = min_lr_scale
        super().__init__(optimizer, inner_schedule.last_epoch)

    def get_lr(self) -> float | Sequence[float]:
        self.inner_schedule.last_epoch = self.last_epoch

        original = self.inner_schedule.get_lr()
        step = self.last_epoch

        if step < self.restarts_steps - self.anneal_steps:
            scale = 1
        else:
            per_restart_progress = step % self.restarts_steps
            if per_restart_progress < self.warmup_steps:
                cycle_t = min(1.0, (per_restart_progress) / self.warmup_steps)
            elif per_restart_progress > (self.restarts_steps - self.anneal_steps):
                cycle_t = min(
                    1.0,
                    (self.restarts_steps - per_restart_progress) / self.anneal_steps,
                )
            else:
                cycle_t = 1
            scale = cycle_t * (1 - self.min_lr_scale) + self.min_lr_scale

        if isinstance(original, Sequence):
            return [lr * scale for lr in original]

        return original * scale


def lrs(base_lr, total, warmup, restart, restart_warmup, anneal, min_scale):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base_lr)
    inner = get_cosine_schedule_with_warmup(opt, warmup, total)
    sched = JaggedLRRestartScheduler(opt, inner, restart, restart_warmup, anneal, min_lr_scale=min_scale)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def main():
    cases = []
    for base_lr, total, warmup, restart, rw, anneal, min_scale in [
        (2e-4, 40, 4, 10, 3, 1, 0.001),
        (1e-3, 30, 0, 7, 2, 3, 0.1),
        (2e-4, 400, 40, 150, 10, 1, 0.001),  # examples/llama-2/relora.yml's restarts
    ]:
        cases.append(dict(base_lr=base_lr, total=total, warmup=warmup, restart=restart, restart_warmup=rw,
                          anneal=anneal, min_scale=min_scale,
                          lrs=lrs(base_lr, total, warmup, restart, rw, anneal, min_scale)))
    out = {"source": "axolotl 067b021c8b87a9e5e380b9173c704cf7340e30f5 src/axolotl/utils/schedulers.py"
                     " JaggedLRRestartScheduler over transformers' get_cosine_schedule_with_warmup",
           "torch_version": torch.__version__, "cases": cases}
    path = os.path.join(os.path.dirname(__file__), "..", "..", "trainer", "src", "test", "resources", "fixtures",
                        "jagged_lr_expected.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
