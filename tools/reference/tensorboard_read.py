#!/usr/bin/env python3
"""Reads a run's TensorBoard event files with tensorboard's own loader (the EventAccumulator the TensorBoard UI
uses), to check what jtune writes for use_tensorboard: true. Prints each scalar tag with its (step, value) pairs.

    python -m venv /tmp/tbvenv && /tmp/tbvenv/bin/pip install --no-index --find-links WHEELS tensorboard==2.21.0
    /tmp/tbvenv/bin/python tools/reference/tensorboard_read.py OUTPUT_DIR/runs/RUN
"""
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main():
    acc = EventAccumulator(sys.argv[1])
    acc.Reload()
    for tag in sorted(acc.Tags()["scalars"]):
        print(tag, [(e.step, round(e.value, 6)) for e in acc.Scalars(tag)])


if __name__ == "__main__":
    main()
