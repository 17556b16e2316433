"""Export a randomly initialised torchvision ResNet-18 to ONNX for benchmarks.

Usage (Debian's torch lives in /usr/bin/python3):

    /usr/bin/python3 bench/make_resnet18.py OUT_DIR

Writes
  OUT_DIR/resnet18.onnx         input `input` float32 [N,3,224,224] -> `output` float32 [N,1000], dynamic batch
  OUT_DIR/resnet18_fixed1.onnx  same weights, fixed shapes [1,3,224,224] -> [1,1000]

Weights are random (torch.manual_seed(0), no pretrained download: nothing is
fetched from the network); the model is exported in eval mode with opset 17.
Each file is checked with onnx.checker.check_model (~45 MB each).
"""

import os
import sys

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
        with torch.no_grad():
            torch.onnx.export(
                model, dummy, path,
                input_names=["input"], output_names=["output"],
                dynamic_axes=dynamic_axes, opset_version=17, do_constant_folding=True,
            )
        onnx.checker.check_model(onnx.load(path))
        print(f"{os.path.getsize(path):>12,d}  {path}")


if __name__ == "__main__":
    main()
