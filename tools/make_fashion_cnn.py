"""Train the bundled Fashion-MNIST CNN (the seed tutorial's 7.4 SimpleCNN adapted to 1x28x28)
and write what nnserve's image tests compare against.

Run from the repository root, after tools/make_image_fixtures.py (it reads the 1000 test PNGs
that script wrote), with Debian's torch 1.13:

    /usr/bin/python3 tools/make_fashion_cnn.py

Data: the real Fashion-MNIST IDX files (/usr/share/datasets/fashion-mnist, override with
FASHION_MNIST_DIR). Deterministic: fixed seed, one thread.

Model: tools/train_reference.py's SimpleCNN: conv1 Conv2d(1, 16, 3, padding=1) -> ReLU ->
MaxPool2d(2) -> conv2 Conv2d(16, 32, 3, padding=1) -> ReLU -> MaxPool2d(2) -> fc1 Linear(32*7*7,
128) -> ReLU -> fc2 Linear(128, 10).
Training transform: ToTensor, Normalize((0.2860,), (0.3530,)) (the training set's mean and
std); served by nnserve's image_classifier with the same steps (model-config.yaml `image:`).

Writes:
  tools/models/fashion_cnn/model.onnx          opset 17, input "input" [batch, 1, 28, 28]
  tools/models/fashion_cnn/model-config.yaml   batching + the image transform
  tools/models/fashion_cnn/index_to_name.json  the ten Fashion-MNIST class names
  tools/models/fashion_cnn/handler             "image_classifier" (read by build-model-store.sh)
  test/fixtures/golden/images/fashion_cnn_1000.json
      for test/fixtures/images/fashion-1000.pngs, each decoded by PIL and transformed by
      torchvision: the true labels, PyTorch's top-1, its accuracy, and the softmax of the
      first 16 images
  test/fixtures/golden/images/fashion_cnn_conv1_0.f32.gz
      PyTorch's conv1 output (before ReLU) for the first test PNG: float32 [16, 28, 28]
"""

import gzip
import io
import json
import os
import struct
import sys
import time

import onnx
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_mnist  # noqa: E402
from fashion_mnist import CLASSES  # noqa: E402
from train_reference import SimpleCNN  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tools", "models", "fashion_cnn")
GOLDEN = os.path.join(ROOT, "test", "fixtures", "golden", "images")
PNGS = os.path.join(ROOT, "test", "fixtures", "images", "fashion-1000.pngs")
MEAN, STD = 0.2860, 0.3530
SEED, EPOCHS, BATCH, LR = 0, 4, 64, 1e-3

torch.set_num_threads(2)
torch.manual_seed(SEED)


def train():
    x, y = fashion_mnist.tensors("train", mean=MEAN, std=STD)
    model = SimpleCNN()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    g = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        total, t0 = 0.0, time.time()
        for i in range(0, len(x), BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}: loss {total / len(x):.4f} ({time.time() - t0:.0f} s)")
    model.eval()
    return model, total / len(x)


def main():
    model, loss = train()
    xt, yt = fashion_mnist.tensors("test", mean=MEAN, std=STD)
    with torch.no_grad():
        acc10k = (model(xt).argmax(1) == yt).float().mean().item()
    print(f"test accuracy (10000): {acc10k:.4f}")

    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "model.onnx")
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), path, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=17,
                      do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))
    with open(os.path.join(OUT, "index_to_name.json"), "w") as f:
        json.dump({str(i): c for i, c in enumerate(CLASSES)}, f, indent=2)
        f.write("\n")
    with open(os.path.join(OUT, "handler"), "w") as f:
        f.write("image_classifier\n")
    with open(os.path.join(OUT, "model-config.yaml"), "w") as f:
        f.write(
            "minWorkers: 1\nmaxWorkers: 1\nbatchSize: 32\nmaxBatchDelay: 5\n"
            "# torchvision: Grayscale(1), Resize((28, 28)), ToTensor, Normalize((0.2860,), (0.3530,))\n"
            "image:\n  grayscale: 1\n  resize: [28, 28]\n  centerCrop: false\n"
            f"  mean: [{MEAN}]\n  std: [{STD}]\n"
            "topk: 3\n")

    # The 1000 PNGs the HTTP test sends, decoded by PIL, through torchvision's transform.
    tf = transforms.Compose([transforms.Grayscale(1), transforms.Resize((28, 28)), transforms.ToTensor(),
                             transforms.Normalize((MEAN,), (STD,))])
    with open(PNGS, "rb") as f:
        blob = f.read()
    tensors, off = [], 0
    while off < len(blob):
        (n,) = struct.unpack_from("<I", blob, off)
        tensors.append(tf(Image.open(io.BytesIO(blob[off + 4:off + 4 + n])).convert("RGB")))
        off += 4 + n
    x = torch.stack(tensors)
    assert torch.equal(x, xt[:len(x)]), "PNG round trip must give the dataset's own tensors"
    labels = yt[:len(x)]
    with torch.no_grad():
        logits = model(x)
        conv1 = model.conv1(x[:1])[0]
    top1 = logits.argmax(1)
    acc = (top1 == labels).float().mean().item()
    probs = torch.softmax(logits[:16], 1)
    golden = {
        "model": "fashion_cnn", "seed": SEED, "epochs": EPOCHS, "final_train_loss": round(loss, 6),
        "test_accuracy_10000": acc10k, "accuracy": acc,
        "labels": labels.tolist(), "torch_top1": top1.tolist(),
        "softmax_first16": [[float(v) for v in row] for row in probs],
    }
    with open(os.path.join(GOLDEN, "fashion_cnn_1000.json"), "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")
    with gzip.GzipFile(os.path.join(GOLDEN, "fashion_cnn_conv1_0.f32.gz"), "wb", mtime=0) as f:
        f.write(conv1.numpy().astype("<f4").tobytes())
    print(f"1000-image accuracy {acc:.4f}; wrote {OUT}")


if __name__ == "__main__":
    main()
