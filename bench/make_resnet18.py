"""Export a randomly initialised torchvision ResNet-18 to ONNX for benchmarks.

Usage (Debian's torch lives in /usr/bin/python3):

    /usr/bin/python3 bench/make_resnet18.py OUT_DIR

Writes
  OUT_DIR/resnet18.onnx         input `input` float32 [N,3,224,224] -> `output` float32 [N,1000], dynamic batch
  OUT_DIR/resnet18_fixed1.onnx  same weights, fixed shapes [1,3,224,224] -> [1,1000]
  OUT_DIR/resnet18_traced.pt    the same network (same weights, eval mode) as TorchScript,
                                torch.jit.trace on a [1,3,224,224] input: the model of the seed
                                tutorial's Flask server (bench/seed_flask.py)

Weights are random (torch.manual_seed(0), no pretrained download: nothing is
fetched from the network); the model is exported in eval mode with opset 17.
Each ONNX file is checked with onnx.checker.check_model (~45 MB each). The trace is
made after both ONNX exports (tracing consumes no random numbers), so it leaves them as
they were; it is checked to give the ONNX export's input the same logits as the eager model.
"""

import os
import sys
import tempfile

import torch
import torchvision

import onnx


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: /usr/bin/python3 bench/make_resnet18.py OUT_DIR")
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)  # random init, never downloads
    model.eval()
    dummy = torch.randn(1, 3, 224, 224)

    targets = [
        ("resnet18.onnx", {"input": {0: "batch"}, "output": {0: "batch"}}),
        ("resnet18_fixed1.onnx", None),
    ]
    for fname, dynamic_axes in targets:
        path = os.path.join(out_dir, fname)
        tmp = path + ".tmp"
        with torch.no_grad():
            torch.onnx.export(
                model, dummy, tmp,
                input_names=["input"], output_names=["output"],
                dynamic_axes=dynamic_axes, opset_version=17, do_constant_folding=True,
            )
        onnx.checker.check_model(onnx.load(tmp))
        os.replace(tmp, path)  # a bench reading the previous file meanwhile keeps reading it whole
        print(f"{os.path.getsize(path):>12,d}  {path}")

    path = os.path.join(out_dir, "resnet18_traced.pt")
    with torch.no_grad():
        traced = torch.jit.trace(model, dummy)
        expected = model(dummy)
    tmp_dir = tempfile.mkdtemp(dir=out_dir)  # same file name there: the archive's inner folder is named after it
    tmp = os.path.join(tmp_dir, "resnet18_traced.pt")
    traced.save(tmp)
    with torch.no_grad():
        got = torch.jit.load(tmp)(dummy)
    if not torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
        sys.exit(f"{tmp}: the loaded trace disagrees with the eager model")
    os.replace(tmp, path)
    os.rmdir(tmp_dir)
    print(f"{os.path.getsize(path):>12,d}  {path}")


if __name__ == "__main__":
    main()
