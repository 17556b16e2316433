#!/usr/bin/python3
"""PyTorch's side of bench/train-step-cnn.ts: the same CNN's forward and forward+backward step
time (CrossEntropyLoss, no optimizer step) on CPU with a given number of threads.

    /usr/bin/python3 bench/train_step_cnn.py --threads 2 --batch 64 --iterations 100

Prints one JSON line: {"forward_ms": [...], "step_ms": [...], "forward_cpu_ms": [...], "step_cpu_ms": [...]}
(per-iteration wall-clock and process CPU times).
"""
import argparse
import json
import time

import torch
import torch.nn as nn


def model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = model()
    x = torch.randn(a.batch, 1, 28, 28)
    t = torch.randint(0, 10, (a.batch,))
    loss_fn = nn.CrossEntropyLoss()
    fwd, step, fwd_cpu, step_cpu = [], [], [], []
    for i in range(a.warmup + a.iterations):
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.no_grad():
            m(x)
        t1, c1 = time.perf_counter(), time.process_time()
        m.zero_grad(set_to_none=True)
        loss_fn(m(x), t).backward()
        t2, c2 = time.perf_counter(), time.process_time()
        if i >= a.warmup:
            fwd.append((t1 - t0) * 1e3)
            step.append((t2 - t1) * 1e3)
            fwd_cpu.append((c1 - c0) * 1e3)
            step_cpu.append((c2 - c1) * 1e3)
    print(json.dumps({"forward_ms": fwd, "step_ms": step, "forward_cpu_ms": fwd_cpu, "step_cpu_ms": step_cpu}))


if __name__ == "__main__":
    main()
