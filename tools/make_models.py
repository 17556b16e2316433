"""Build nnserve's small real models and golden reference files with PyTorch.

Run from the repository root (Debian's torch 1.13 lives in /usr/bin/python3):

    /usr/bin/python3 tools/make_models.py

Needs: python3-torch, python3-onnx (apt) and the Fashion-MNIST IDX files from
the `dataset-fashion-mnist` package (/usr/share/datasets/fashion-mnist, gzipped;
override with FASHION_MNIST_DIR). No network access is used. The script is
deterministic (fixed seeds, torch.set_num_threads(1)).

It writes:

  tools/models/neuralnet/model.onnx           seed tutorial 5.6 NeuralNet(1, 8, 1), y = 2x + 1
  tools/models/neuralnet/model-config.yaml
  tools/models/fashion_mlp/model.onnx         Linear(784,64)-ReLU-Linear(64,10) on Fashion-MNIST
  tools/models/fashion_mlp/index_to_name.json
  tools/models/fashion_mlp/model-config.yaml
  test/fixtures/models/fixed_batch_mlp/model.onnx   fashion_mlp weights, fixed input [1,784]
  test/fixtures/models/two_inputs/model.onnx        x f32 [N,3], idx i64 [N] -> y f32 [N,3], s f32 [N]
  test/fixtures/models/double_input/model.onnx      x f64 [N,2] -> output f64 [N,2] (= x*3)
  test/fixtures/golden/{neuralnet,fashion_mlp,fixed_batch_mlp,two_inputs,double_input}.json

Golden files look like
  {"model": name, "cases": [{"inputs": {NAME: {"dtype", "shape", "data": [flat]}},
                             "outputs": {NAME: {...}}}, ...]}
with PyTorch's outputs (eval mode, no_grad). Float values are the exact
float32/float64 values written as Python floats (shortest round-trip repr).
fashion_mlp cases also carry "labels" (true Fashion-MNIST test labels); the
top-level "meta" object records training facts (seed, loss, accuracy).

Every ONNX file is checked with onnx.checker.check_model, and with
onnxruntime against the goldens when the Python onnxruntime module is
importable (otherwise that step is skipped).
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_mnist  # noqa: E402
from fashion_mnist import CLASSES as FASHION_CLASSES  # noqa: E402
from train_reference import NeuralNet  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "tools", "models")
FIXTURE_MODELS = os.path.join(ROOT, "test", "fixtures", "models")
GOLDEN = os.path.join(ROOT, "test", "fixtures", "golden")
OPSET = 17

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

written = []  # paths written, for the summary


# ----------------------------------------------------------------------------
# helpers

def ensure_dir(path):
    os.makedirs(path, exist_ok=True)


def write_text(path, text):
    ensure_dir(os.path.dirname(path))
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    written.append(path)


def write_json(path, obj, compact=False):
    if compact:
        text = json.dumps(obj, separators=(",", ":")) + "\n"
    else:
        text = json.dumps(obj, indent=2) + "\n"
    write_text(path, text)


def export(model, args, path, input_names, output_names, dynamic_axes=None):
    ensure_dir(os.path.dirname(path))
    model.eval()
    torch.onnx.export(
        model, args, path,
        input_names=input_names,
        output_names=output_names,
        dynamic_axes=dynamic_axes,
        opset_version=OPSET,
        do_constant_folding=True,
    )
    onnx.checker.check_model(onnx.load(path))
    written.append(path)


def tensor_json(t):
    t = t.detach().cpu()
    dtype = {
        torch.float32: "float32",
        torch.float64: "float64",
        torch.int64: "int64",
        torch.int32: "int32",
    }[t.dtype]
    return {"dtype": dtype, "shape": list(t.shape), "data": t.reshape(-1).tolist()}


def run_case(model, inputs, output_names):
    """inputs: ordered dict name -> tensor (in forward() argument order)."""
    model.eval()
    with torch.no_grad():
        out = model(*inputs.values())
    if not isinstance(out, (tuple, list)):
        out = (out,)
    assert len(out) == len(output_names)
    return {
        "inputs": {k: tensor_json(v) for k, v in inputs.items()},
        "outputs": {k: tensor_json(v) for k, v in zip(output_names, out)},
    }


def model_config_yaml(**kv):
    return "".join(f"{k}: {v}\n" for k, v in kv.items())


# ----------------------------------------------------------------------------
# 1. seed tutorial NeuralNet (the class is tools/train_reference.py's)

def train_neuralnet(seed):
    torch.manual_seed(seed)
    model = NeuralNet(1, 8, 1)
    criterion = nn.MSELoss()
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    X = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    Y = torch.tensor([[3.0], [5.0], [7.0], [9.0]])
    for epoch in range(1000):
        outputs = model(X)
        loss = criterion(outputs, Y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (epoch + 1) % 100 == 0:
            print(f"  seed {seed} Epoch [{epoch+1}/1000], Loss: {loss.item():.6f}")
    # loss of the final (trained) weights
    with torch.no_grad():
        final = criterion(model(X), Y).item()
    return model, final


def make_neuralnet():
    print("== neuralnet (seed tutorial 5.6)")
    seed = 0
    while True:
        model, final_loss = train_neuralnet(seed)
        print(f"  seed {seed}: final loss {final_loss:.6g}")
        if final_loss < 1e-3:
            break
        seed += 1
        if seed > 100:
            sys.exit("neuralnet: no seed in 0..100 reached loss < 1e-3")
    model.eval()
    d = os.path.join(MODELS, "neuralnet")
    torch.manual_seed(seed)  # the export's sample input; irrelevant to the result
    export(model, torch.randn(1, 1), os.path.join(d, "model.onnx"),
           ["input"], ["output"],
           {"input": {0: "batch"}, "output": {0: "batch"}})
    write_text(os.path.join(d, "model-config.yaml"), model_config_yaml(
        minWorkers=1, maxWorkers=1, batchSize=32, maxBatchDelay=5, responseTimeout=120))
    cases = [
        run_case(model, {"input": torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.5], [-3.0]])}, ["output"]),
        run_case(model, {"input": torch.tensor([[10.0]])}, ["output"]),
    ]
    meta = {"seed": seed, "final_loss": final_loss, "epochs": 1000, "optimizer": "SGD lr=0.01",
            "loss": "MSELoss", "target": "y = 2x + 1"}
    write_json(os.path.join(GOLDEN, "neuralnet.json"), {"model": "neuralnet", "meta": meta, "cases": cases})
    return {"seed": seed, "final_loss": final_loss}


# ----------------------------------------------------------------------------
# 2. Fashion-MNIST MLP

def load_fashion():
    def split(name):
        images, labels = fashion_mnist.load(name)
        x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
        return torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64))

    return (*split("train"), *split("test"))


def fashion_mlp():
    return nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))


def make_fashion():
    print("== fashion_mlp")
    xtr, ytr, xte, yte = load_fashion()
    print(f"  train {tuple(xtr.shape)}, test {tuple(xte.shape)}")
    torch.manual_seed(0)
    model = fashion_mlp()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(0)
    for epoch in range(2):
        model.train()
        perm = torch.randperm(xtr.shape[0], generator=gen)
        total = 0.0
        for i in range(0, xtr.shape[0], 64):
            idx = perm[i:i + 64]
            loss = criterion(model(xtr[idx]), ytr[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * idx.shape[0]
        print(f"  epoch {epoch + 1}/2 train loss {total / xtr.shape[0]:.4f}")
    model.eval()
    with torch.no_grad():
        acc = (model(xte).argmax(1) == yte).float().mean().item()
    print(f"  test accuracy {acc * 100:.2f}%")

    d = os.path.join(MODELS, "fashion_mlp")
    export(model, torch.zeros(1, 784), os.path.join(d, "model.onnx"),
           ["input"], ["output"],
           {"input": {0: "batch"}, "output": {0: "batch"}})
    write_json(os.path.join(d, "index_to_name.json"), {str(i): n for i, n in enumerate(FASHION_CLASSES)})
    write_text(os.path.join(d, "model-config.yaml"), model_config_yaml(
        minWorkers=1, maxWorkers=1, batchSize=16, maxBatchDelay=5))

    meta = {"test_accuracy": acc, "epochs": 2, "batch_size": 64, "optimizer": "Adam lr=1e-3",
            "input": "float32 [N,784], pixels / 255", "classes": FASHION_CLASSES}
    cases = []
    c = run_case(model, {"input": xte[:8]}, ["output"])
    c["labels"] = yte[:8].tolist()
    cases.append(c)
    for i in range(3):
        c = run_case(model, {"input": xte[i:i + 1]}, ["output"])
        c["labels"] = yte[i:i + 1].tolist()
        cases.append(c)
    write_json(os.path.join(GOLDEN, "fashion_mlp.json"),
               {"model": "fashion_mlp", "meta": meta, "cases": cases}, compact=True)

    # 3a. same weights, fixed batch 1 (no dynamic axes)
    print("== fixed_batch_mlp")
    export(model, torch.zeros(1, 784), os.path.join(FIXTURE_MODELS, "fixed_batch_mlp", "model.onnx"),
           ["input"], ["output"], None)
    cases = []
    for i in range(2):
        c = run_case(model, {"input": xte[i:i + 1]}, ["output"])
        c["labels"] = yte[i:i + 1].tolist()
        cases.append(c)
    write_json(os.path.join(GOLDEN, "fixed_batch_mlp.json"),
               {"model": "fixed_batch_mlp", "meta": {"note": "fashion_mlp weights, input fixed [1,784]"},
                "cases": cases}, compact=True)
    return {"test_accuracy": acc}


# ----------------------------------------------------------------------------
# 3b/3c. tiny fixtures

class TwoInputs(nn.Module):
    def forward(self, x, idx):
        y = x * 2 + idx.unsqueeze(1).float()
        s = x.sum(dim=1)
        return y, s


class DoubleInput(nn.Module):
    def forward(self, x):
        return x * 3


def make_tiny():
    print("== two_inputs")
    m = TwoInputs().eval()
    export(m, (torch.zeros(2, 3), torch.zeros(2, dtype=torch.int64)),
           os.path.join(FIXTURE_MODELS, "two_inputs", "model.onnx"),
           ["x", "idx"], ["y", "s"],
           {"x": {0: "batch"}, "idx": {0: "batch"}, "y": {0: "batch"}, "s": {0: "batch"}})
    cases = [
        run_case(m, {"x": torch.tensor([[1.0, 2.0, 3.0], [-1.5, 0.25, 4.0], [0.1, 0.2, 0.3], [0.0, 0.0, 0.0]]),
                     "idx": torch.tensor([0, 1, -2, 7], dtype=torch.int64)}, ["y", "s"]),
        run_case(m, {"x": torch.tensor([[3.0, -3.0, 0.5]]),
                     "idx": torch.tensor([5], dtype=torch.int64)}, ["y", "s"]),
    ]
    write_json(os.path.join(GOLDEN, "two_inputs.json"), {"model": "two_inputs", "cases": cases})

    print("== double_input")
    m = DoubleInput().eval()
    export(m, torch.zeros(2, 2, dtype=torch.float64),
           os.path.join(FIXTURE_MODELS, "double_input", "model.onnx"),
           ["x"], ["output"], {"x": {0: "batch"}, "output": {0: "batch"}})
    cases = [
        run_case(m, {"x": torch.tensor([[1.0, 2.0], [0.1, -1e300], [1.0 / 3.0, 1e-300]], dtype=torch.float64)},
                 ["output"]),
        run_case(m, {"x": torch.tensor([[0.1, 0.2]], dtype=torch.float64)}, ["output"]),
    ]
    write_json(os.path.join(GOLDEN, "double_input.json"), {"model": "double_input", "cases": cases})


# ----------------------------------------------------------------------------
# 6. verification + summary

ONNX_PATHS = {
    "neuralnet": os.path.join(MODELS, "neuralnet", "model.onnx"),
    "fashion_mlp": os.path.join(MODELS, "fashion_mlp", "model.onnx"),
    "fixed_batch_mlp": os.path.join(FIXTURE_MODELS, "fixed_batch_mlp", "model.onnx"),
    "two_inputs": os.path.join(FIXTURE_MODELS, "two_inputs", "model.onnx"),
    "double_input": os.path.join(FIXTURE_MODELS, "double_input", "model.onnx"),
}

ELEM_TYPES = {1: "float32", 7: "int64", 11: "float64", 6: "int32"}


def describe(path):
    m = onnx.load(path)
    onnx.checker.check_model(m)

    def io(vs):
        out = []
        for v in vs:
            tt = v.type.tensor_type
            dims = [d.dim_param if d.dim_param else d.dim_value for d in tt.shape.dim]
            out.append(f"{v.name} {ELEM_TYPES.get(tt.elem_type, tt.elem_type)} {dims}")
        return ", ".join(out)

    return io(m.graph.input), io(m.graph.output), m.opset_import[0].version


def verify_ort():
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime (Python) not importable: skipping runtime check")
        return
    np_dtypes = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32}
    for name, path in ONNX_PATHS.items():
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        with open(os.path.join(GOLDEN, name + ".json")) as f:
            golden = json.load(f)
        for ci, case in enumerate(golden["cases"]):
            feeds = {k: np.array(v["data"], dtype=np_dtypes[v["dtype"]]).reshape(v["shape"])
                     for k, v in case["inputs"].items()}
            outs = sess.run(list(case["outputs"].keys()), feeds)
            for (k, v), got in zip(case["outputs"].items(), outs):
                want = np.array(v["data"], dtype=np_dtypes[v["dtype"]]).reshape(v["shape"])
                assert got.shape == want.shape, (name, ci, k, got.shape, want.shape)
                assert np.allclose(got, want, rtol=1e-5, atol=1e-5), (name, ci, k)
        print(f"  onnxruntime OK: {name} ({len(golden['cases'])} cases)")


def main():
    nn_info = make_neuralnet()
    fm_info = make_fashion()
    make_tiny()

    print("\n== verification (onnx.checker)")
    for name, path in ONNX_PATHS.items():
        ins, outs, opset = describe(path)
        print(f"  {name}: opset {opset}; inputs: {ins}; outputs: {outs}")
    verify_ort()

    print("\n== files written")
    for p in written:
        print(f"  {os.path.getsize(p):>9,d}  {os.path.relpath(p, ROOT)}")
    print(f"\nneuralnet: seed {nn_info['seed']}, final loss {nn_info['final_loss']:.6g}")
    print(f"fashion_mlp: test accuracy {fm_info['test_accuracy'] * 100:.2f}%")
    for p in written:
        if p.startswith(GOLDEN) and os.path.getsize(p) >= 200_000:
            sys.exit(f"golden file too large: {p}")


if __name__ == "__main__":
    main()
