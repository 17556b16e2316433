#!/usr/bin/python3
"""PyTorch reference runs for nnserve's training loop (Debian's torch 1.13, /usr/bin/python3).

    /usr/bin/python3 tools/train_reference.py architectures   # the task models' architecture JSON
    /usr/bin/python3 tools/train_reference.py fashion-cnn [--seeds 0,1,2] [--epochs 5] [--threads 2]
    /usr/bin/python3 tools/train_reference.py regression [--seeds 0,1,2]
    /usr/bin/python3 tools/train_reference.py fashion-lstm [--seeds 0,1,2]
    /usr/bin/python3 tools/train_reference.py trajectories
    /usr/bin/python3 tools/train_reference.py eval-losses
    /usr/bin/python3 tools/train_reference.py all

The same settings as `nnserve train` gets in test/training/real-task*.test.ts and
bench/train-fashion-cnn.ts, written as the seed tutorial writes them (5.6, 6.5, 7.4, 8.8):

  fashion-cnn   SimpleCNN on 1x28x28 (conv1 1->16 3x3 p1, ReLU, MaxPool 2, conv2 16->32 3x3 p1,
                ReLU, MaxPool 2, view(-1, 1568), fc1 1568->128, ReLU, fc2 128->10),
                ToTensor + Normalize((0.5,), (0.5,)), CrossEntropyLoss, Adam lr 1e-3, batch 64,
                shuffled, 5 epochs on the 60000 training images; accuracy on the 10000 test images.
  regression    NeuralNet(1, 8, 1) on y = 2x + 1 (X = 1..4), MSELoss, SGD lr 0.01, 1000 epochs,
                full batch; the final loss.
  fashion-lstm  Fashion-MNIST rows as a 28-step sequence of 28 features: LSTM(28, 64, batch_first)
                + Linear(64, 10) on the last step, Adam lr 1e-3, batch 64, 1 epoch on the first
                6000 training images; accuracy on the first 2000 test images.
  trajectories  no randomness: the same initial weights (written as *-init.safetensors), no
                shuffling, so nnserve's loop must follow PyTorch's losses and end at its weights
                (*-final.safetensors): the regression above, and a BatchNorm MLP on 500 images
                in batches of 64 (a partial last batch) with Adam + weight decay, clipping,
                StepLR and a validation set; a small CNN on real images (tied pooling maxima).
  eval-losses   torch.nn.functional's value of every loss (with weights, ignore_index, label
                smoothing, pos_weight, K-dimensional targets, log_target) for random inputs:
                what src/training/loss-metrics.ts computes for validation sets.

Data: the real Fashion-MNIST IDX files (/usr/share/datasets/fashion-mnist, override with
FASHION_MNIST_DIR), read with gzip + numpy (tools/fashion_mnist.py). torch.set_num_threads(--threads,
default 2).
Seeds differ from nnserve's (torch.manual_seed drives init and shuffling here), so the
comparison is of accuracy over several seeds, not of weights.

Writes test/fixtures/training/reference/<task>.json (committed, so CI needs no torch) and,
for `architectures`, test/fixtures/training/architectures/<model>.json via tools/torch_export.py.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from fashion_mnist import tensors as fashion  # noqa: E402
from torch_export import architecture, dumps, save_safetensors  # noqa: E402

FIXTURES = os.path.join(ROOT, "test", "fixtures", "training")


class SimpleCNN(nn.Module):
    """The seed's 7.4 SimpleCNN with a 1x28x28 input: 32 * 7 * 7 = 1568 features into fc1."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = x.view(-1, 32 * 7 * 7)
        x = self.relu(self.fc1(x))
        x = self.fc2(x)
        return x


class NeuralNet(nn.Module):
    """The seed's 5.6 regression network."""

    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        out = self.fc1(x)
        out = self.relu(out)
        out = self.fc2(out)
        return out


class RowLSTM(nn.Module):
    """The seed's 8.8 LSTMModel reading an image's rows as a sequence; the last step classifies."""

    def __init__(self, input_size=28, hidden_size=64, num_classes=10):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        x = x.view(-1, 28, 28)
        out, _ = self.lstm(x)
        return self.fc(out[:, -1, :])


def fashion_mlp():
    """The bench's 784-512-512-10 MLP."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


def accuracy(model, x, y, batch_size=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            correct += (model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum().item()
    return 100.0 * correct / len(x)


def train_classifier(model, x, y, epochs, batch_size, lr, seed):
    """The seed's 7.4 loop: shuffled DataLoader, CrossEntropyLoss, Adam; the partial last batch kept."""
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=batch_size, shuffle=True,
        generator=torch.Generator().manual_seed(seed))
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=lr)
    losses = []
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        running, n = 0.0, 0
        for images, labels in loader:
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            running += loss.item() * len(labels)
            n += len(labels)
        losses.append(running / n)
    return losses, time.perf_counter() - t0


def run_fashion_cnn(a):
    x, y = fashion("train")
    tx, ty = fashion("test")
    runs = []
    for seed in a.seeds:
        torch.manual_seed(seed)
        model = SimpleCNN()
        losses, seconds = train_classifier(model, x, y, a.epochs or 5, 64, 1e-3, seed)
        acc = accuracy(model, tx, ty)
        print(f"fashion-cnn seed {seed}: test accuracy {acc:.2f}%  epoch losses {[round(l, 4) for l in losses]}  {seconds:.1f} s", file=sys.stderr)
        runs.append({"seed": seed, "epoch_train_loss": losses, "test_accuracy": acc, "train_seconds": seconds})
    return {
        "settings": {"model": "SimpleCNN 1x28x28 (fc1 1568->128)", "normalize": [0.5, 0.5], "loss": "CrossEntropyLoss",
                     "optimizer": "Adam", "lr": 1e-3, "batch_size": 64, "epochs": a.epochs or 5, "shuffle": True,
                     "train_samples": len(x), "test_samples": len(tx)},
        "runs": runs,
        "mean_test_accuracy": float(np.mean([r["test_accuracy"] for r in runs])),
    }


def run_regression(a):
    X = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    Y = torch.tensor([[3.0], [5.0], [7.0], [9.0]])
    runs = []
    for seed in a.seeds:
        torch.manual_seed(seed)
        model = NeuralNet(1, 8, 1)
        criterion = nn.MSELoss()
        optimizer = optim.SGD(model.parameters(), lr=0.01)
        for _ in range(a.epochs or 1000):
            loss = criterion(model(X), Y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            final = criterion(model(X), Y).item()
        print(f"regression seed {seed}: loss {final:.3g}", file=sys.stderr)
        runs.append({"seed": seed, "final_loss": final})
    return {
        "settings": {"model": "NeuralNet(1, 8, 1)", "loss": "MSELoss", "optimizer": "SGD", "lr": 0.01,
                     "epochs": a.epochs or 1000, "batch_size": 4, "data": "y = 2x + 1, x = 1..4"},
        "runs": runs,
    }


def run_fashion_lstm(a):
    x, y = fashion("train", 6000)
    tx, ty = fashion("test", 2000)
    runs = []
    for seed in a.seeds:
        torch.manual_seed(seed)
        model = RowLSTM()
        losses, seconds = train_classifier(model, x, y, a.epochs or 1, 64, 1e-3, seed)
        acc = accuracy(model, tx, ty)
        print(f"fashion-lstm seed {seed}: test accuracy {acc:.2f}%  {seconds:.1f} s", file=sys.stderr)
        runs.append({"seed": seed, "epoch_train_loss": losses, "test_accuracy": acc, "train_seconds": seconds})
    return {
        "settings": {"model": "LSTM(28, 64, batch_first) + Linear(64, 10) on the last step", "normalize": [0.5, 0.5],
                     "loss": "CrossEntropyLoss", "optimizer": "Adam", "lr": 1e-3, "batch_size": 64,
                     "epochs": a.epochs or 1, "train_samples": len(x), "test_samples": len(tx)},
        "runs": runs,
        "mean_test_accuracy": float(np.mean([r["test_accuracy"] for r in runs])),
    }


def write_architectures():
    out = os.path.join(FIXTURES, "architectures")
    os.makedirs(out, exist_ok=True)
    models = {
        "fashion_cnn": (SimpleCNN(), torch.zeros(2, 1, 28, 28)),
        "fashion_lstm": (RowLSTM(), torch.zeros(2, 1, 28, 28)),
        "fashion_mlp": (fashion_mlp(), torch.zeros(2, 1, 28, 28)),
        "neural_net": (NeuralNet(1, 8, 1), torch.zeros(2, 1)),
    }
    for name, (model, x) in models.items():
        model.eval()
        arch = architecture(model, x, input_names=["x"], name=None if name != "fashion_mlp" else "FashionMLP")
        path = os.path.join(out, f"{name}.json")
        with open(path, "w") as f:
            f.write(dumps(arch))
        print(path)


def run_trajectories(a):
    """Step-by-step agreement of the whole loop (graph, loss, optimizer, clipping, scheduler,
    partial batch, BatchNorm buffers, eval) from the same initial weights, no shuffling."""
    out = os.path.join(FIXTURES, "reference")
    os.makedirs(out, exist_ok=True)
    result = {}

    # 1. The seed's 5.6 regression: full batch, SGD, 1000 epochs.
    torch.manual_seed(0)
    model = NeuralNet(1, 8, 1)
    save_safetensors(model.state_dict(), os.path.join(out, "regression-init.safetensors"))
    X = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    Y = torch.tensor([[3.0], [5.0], [7.0], [9.0]])
    criterion = nn.MSELoss()
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    losses = []
    for _ in range(1000):
        loss = criterion(model(X), Y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    save_safetensors(model.state_dict(), os.path.join(out, "regression-final.safetensors"))
    result["regression"] = {"settings": "NeuralNet(1, 8, 1), MSELoss, SGD lr 0.01, 1000 epochs, X = 1..4, Y = 2X + 1",
                            "epoch_train_loss": losses}

    # 2. Mini-batches with a partial last batch, BatchNorm, Adam + weight decay, clipping, StepLR, validation.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))
    with open(os.path.join(FIXTURES, "architectures", "mlp_batchnorm.json"), "w") as f:
        model.eval()
        f.write(dumps(architecture(model, torch.zeros(2, 1, 28, 28), input_names=["x"], name="MLPBatchNorm")))
    save_safetensors(model.state_dict(), os.path.join(out, "mlp-minibatch-init.safetensors"))
    x, y = fashion("train", 500, mean=0.0, std=1.0)
    vx, vy = fashion("test", 200, mean=0.0, std=1.0)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    epochs = []
    for _ in range(3):
        model.train()
        lr = optimizer.param_groups[0]["lr"]
        total, n, correct = 0.0, 0, 0
        for i in range(0, len(x), 64):
            xb, yb = x[i:i + 64], y[i:i + 64]
            out_ = model(xb)
            loss = criterion(out_, yb)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            optimizer.step()
            total += loss.item() * len(yb)
            n += len(yb)
            correct += (out_.argmax(1) == yb).sum().item()
        scheduler.step()
        model.eval()
        with torch.no_grad():
            vo = model(vx)
            val_loss = criterion(vo, vy).item()
            val_acc = (vo.argmax(1) == vy).float().mean().item()
        epochs.append({"train_loss": total / n, "train_accuracy": correct / n, "val_loss": val_loss, "val_accuracy": val_acc, "lr": lr})
    save_safetensors(model.state_dict(), os.path.join(out, "mlp-minibatch-final.safetensors"))

    # 3. A small CNN on real images: their constant background makes pooling windows with tied
    #    maxima, where PyTorch's MaxPool sends the gradient to the first maximum only.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(392, 10))
    with open(os.path.join(FIXTURES, "architectures", "small_cnn.json"), "w") as f:
        model.eval()
        f.write(dumps(architecture(model, torch.zeros(2, 1, 28, 28), input_names=["x"], name="SmallCNN")))
    model.train()
    save_safetensors(model.state_dict(), os.path.join(out, "cnn-minibatch-init.safetensors"))
    x, y = fashion("train", 256)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for i in range(0, len(x), 32):
        optimizer.zero_grad()
        loss = criterion(model(x[i:i + 32]), y[i:i + 32])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    save_safetensors(model.state_dict(), os.path.join(out, "cnn-minibatch-final.safetensors"))
    result["cnn_minibatch"] = {
        "settings": "Conv2d(1,4,3,p=1)-ReLU-MaxPool2d(2)-Conv2d(4,8,3,p=1)-ReLU-MaxPool2d(2)-Flatten-Linear(392,10); first 256 "
                    "train images, Normalize(0.5, 0.5), batch 32 unshuffled; CrossEntropyLoss; Adam lr 1e-3; 1 epoch",
        "step_loss": losses,
    }
    result["mlp_minibatch"] = {
        "settings": "Flatten-Linear(784,32)-BatchNorm1d-ReLU-Linear(32,10); first 500 train images /255, batch 64 "
                    "unshuffled (last batch 52); CrossEntropyLoss; Adam lr 1e-2 weight_decay 1e-4; clip_grad_norm_ 0.5; "
                    "StepLR(step_size=1, gamma=0.5) per epoch; 3 epochs; validation: first 200 test images",
        "epochs": epochs,
    }
    return result


def run_eval_losses(a):
    """torch.nn losses over a whole set, for src/training/loss-metrics.ts (evaluation losses in JS)."""
    torch.manual_seed(0)
    N, C = 12, 5
    logits = torch.randn(N, C) * 2
    classes = torch.randint(0, C, (N,))
    classes[3] = 2
    seg_logits = torch.randn(N, C, 3)
    seg_classes = torch.randint(0, C, (N, 3))
    values = torch.randn(N, 3)
    values_target = torch.randn(N, 3)
    probs = torch.rand(N, 4) * 0.98 + 0.01
    bits = (torch.rand(N, 4) > 0.5).float()
    log_probs = torch.log_softmax(torch.randn(N, C), 1)
    dist = torch.softmax(torch.randn(N, C), 1)
    w = [0.5, 1.0, 2.0, 1.5, 0.25]
    F = nn.functional
    cases = [
        ({"type": "MSELoss"}, values, values_target, F.mse_loss(values, values_target)),
        ({"type": "MSELoss", "reduction": "sum"}, values, values_target, F.mse_loss(values, values_target, reduction="sum") / N),
        ({"type": "L1Loss"}, values, values_target, F.l1_loss(values, values_target)),
        ({"type": "BCELoss"}, probs, bits, F.binary_cross_entropy(probs, bits)),
        ({"type": "BCEWithLogitsLoss", "pos_weight": [1.0, 2.0, 0.5, 3.0]}, values.repeat(1, 2)[:, :4], bits,
         F.binary_cross_entropy_with_logits(values.repeat(1, 2)[:, :4], bits, pos_weight=torch.tensor([1.0, 2.0, 0.5, 3.0]))),
        ({"type": "CrossEntropyLoss"}, logits, classes, F.cross_entropy(logits, classes)),
        ({"type": "CrossEntropyLoss", "weight": w, "ignore_index": 2, "label_smoothing": 0.1}, logits, classes,
         F.cross_entropy(logits, classes, weight=torch.tensor(w), ignore_index=2, label_smoothing=0.1)),
        ({"type": "CrossEntropyLoss", "reduction": "sum"}, logits, classes, F.cross_entropy(logits, classes, reduction="sum") / N),
        ({"type": "CrossEntropyLoss", "label_smoothing": 0.2}, seg_logits, seg_classes, F.cross_entropy(seg_logits, seg_classes, label_smoothing=0.2)),
        ({"type": "NLLLoss", "weight": w}, log_probs, classes, F.nll_loss(log_probs, classes, weight=torch.tensor(w))),
        ({"type": "KLDivLoss", "reduction": "batchmean"}, log_probs, dist, F.kl_div(log_probs, dist, reduction="batchmean")),
        ({"type": "KLDivLoss"}, log_probs, dist, F.kl_div(log_probs, dist, reduction="mean")),
        ({"type": "KLDivLoss", "reduction": "batchmean", "log_target": True}, log_probs, torch.log(dist),
         F.kl_div(log_probs, torch.log(dist), reduction="batchmean", log_target=True)),
    ]
    out = []
    for spec, pred, target, loss in cases:
        if target.dtype == torch.int64:
            acc_target = target
        else:
            acc_target = None
        correct = None
        if spec["type"] in ("CrossEntropyLoss", "NLLLoss"):
            keep = target != spec.get("ignore_index", -100)
            correct = int((pred.argmax(1) == target)[keep].sum()), int(keep.sum())
        elif spec["type"] == "BCELoss":
            correct = int(((pred > 0.5) == (target > 0.5)).sum()), target.numel()
        elif spec["type"] == "BCEWithLogitsLoss":
            correct = int(((pred > 0) == (target > 0.5)).sum()), target.numel()
        out.append({
            "spec": spec, "loss": float(loss),
            "pred": {"dims": list(pred.shape), "data": pred.flatten().tolist()},
            "target": {"dtype": "int64" if acc_target is not None else "float32", "dims": list(target.shape), "data": target.flatten().tolist()},
            "accuracy": None if correct is None else correct[0] / correct[1],
        })
    return {"note": "per-sample set losses: reduction sum is divided by N", "cases": out}


TASKS = {"fashion-cnn": run_fashion_cnn, "regression": run_regression, "fashion-lstm": run_fashion_lstm, "trajectories": run_trajectories, "eval-losses": run_eval_losses}


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("task", choices=[*TASKS, "architectures", "all"])
    p.add_argument("--seeds", default="0,1,2", help="comma-separated torch.manual_seed values")
    p.add_argument("--epochs", type=int, help="override the task's epochs")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--out", help="write the result JSON here instead of test/fixtures/training/reference/<task>.json")
    a = p.parse_args(argv)
    a.seeds = [int(s) for s in a.seeds.split(",")]
    torch.set_num_threads(a.threads)
    if a.task in ("architectures", "all"):
        write_architectures()
    tasks = [t for t in TASKS] if a.task == "all" else [a.task] if a.task in TASKS else []
    for task in tasks:
        result = {"task": task, "torch_version": torch.__version__, "threads": torch.get_num_threads(), **TASKS[task](a)}
        path = a.out or os.path.join(FIXTURES, "reference", f"{task}.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
