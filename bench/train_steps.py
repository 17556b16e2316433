#!/usr/bin/python3
"""PyTorch's side of bench/train-steps.ts: full training steps (zero_grad, forward, loss,
backward, Adam step) of the bench models, timed on request so that the Node side can alternate
rounds between nnserve and PyTorch in one run.

    /usr/bin/python3 bench/train_steps.py        # then, one JSON request a line on stdin:
    {"model": "cnn", "threads": 2, "batch": 64, "warmup": 10, "steps": 50}
    -> {"step_ms": [...], "forward_backward_ms": [...]}   # one JSON line on stdout per request

Models (tools/train_reference.py): "cnn" the seed's SimpleCNN on 1x28x28, "mlp" 784-512-512-10,
"lstm" LSTM(28, 64) over Fashion-MNIST rows + Linear(64, 10). CrossEntropyLoss, Adam lr 1e-3,
the first `batch` Fashion-MNIST training images (Normalize 0.5, 0.5).
"""
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.optim as optim

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
from fashion_mnist import tensors as fashion  # noqa: E402
from train_reference import RowLSTM, SimpleCNN, fashion_mlp  # noqa: E402

MODELS = {"cnn": SimpleCNN, "mlp": fashion_mlp, "lstm": RowLSTM}


def run(req, data):
    torch.set_num_threads(int(req["threads"]))
    torch.manual_seed(0)
    model = MODELS[req["model"]]()
    model.train()
    x, y = data
    x, y = x[:req["batch"]], y[:req["batch"]]
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    times, fb = [], []
    for i in range(req["warmup"] + req["steps"]):
        t0 = time.perf_counter()
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        t1 = time.perf_counter()
        optimizer.step()
        loss.item()
        if i >= req["warmup"]:
            times.append((time.perf_counter() - t0) * 1e3)
            fb.append((t1 - t0) * 1e3)
    return {"step_ms": times, "forward_backward_ms": fb, "threads": torch.get_num_threads()}


def main():
    data = fashion("train", 1024)
    print(json.dumps({"ready": True, "torch_version": torch.__version__}), flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(run(json.loads(line), data)), flush=True)


if __name__ == "__main__":
    main()
