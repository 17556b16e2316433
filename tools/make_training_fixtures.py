#!/usr/bin/python3
"""Makes the training engine's reference fixtures with PyTorch (Debian's torch 1.13).

    /usr/bin/python3 tools/make_training_fixtures.py

Writes test/fixtures/training/:
  optimizers.json     initial parameters, 20 gradient sets, and torch.optim's parameters after
                      each step for SGD/Adam/AdamW/RMSprop/Adagrad option combinations (param
                      groups by name or glob, frozen parameters, weight decay, nesterov, amsgrad,
                      centered, maximize). Float32 arrays are base64 of little-endian bytes.
  schedulers.json     torch.optim.lr_scheduler learning rates (and OneCycleLR's momentum/beta1)
                      of each param group after construction and after each of 100+ steps.
  clip.json           torch.nn.utils.clip_grad_norm_ / clip_grad_value_ results.
  fashion-mnist.json  counts, first labels and pixel facts of /usr/share/datasets/fashion-mnist
                      read with gzip + numpy by tools/fashion_mnist.py (not with the code under
                      test; override the folder with FASHION_MNIST_DIR).
  image-folder/       a small class-per-folder tree of PNGs, and image-folder.json with
                      torchvision.datasets.ImageFolder's classes, samples and ToTensor() values.

The specs in the JSON (names, globs, "freeze", "warmup") are nnserve's; this script builds the
torch objects a user would write for them.
"""
import base64
import fnmatch
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
from torch.optim import lr_scheduler as S

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import fashion_mnist  # noqa: E402

OUT = os.path.join(ROOT, "test", "fixtures", "training")
STEPS = 20


def b64(t):
    a = np.ascontiguousarray(t.detach().cpu().numpy() if torch.is_tensor(t) else t, dtype="<f4")
    return base64.b64encode(a.tobytes()).decode("ascii")


def compact(obj, indent=""):
    """JSON with lists of scalars (and of short scalar lists) on one line: small, diffable files."""
    flat = lambda x: not isinstance(x, (list, dict)) or (isinstance(x, list) and all(not isinstance(y, (list, dict)) for y in x))
    if isinstance(obj, list) and all(not isinstance(x, dict) and flat(x) for x in obj) and (
            all(not isinstance(x, list) for x in obj) or len(json.dumps(obj)) < 120):
        return json.dumps(obj)
    inner = indent + " "
    if isinstance(obj, dict):
        items = [f"{inner}{json.dumps(k)}: {compact(v, inner)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}" if items else "{}"
    if isinstance(obj, list):
        return "[\n" + ",\n".join(inner + compact(v, inner) for v in obj) + "\n" + indent + "]" if obj else "[]"
    return json.dumps(obj)


def write_json(name, obj):
    with open(os.path.join(OUT, name), "w") as f:
        f.write(compact(obj) + "\n")


# --- optimizers ------------------------------------------------------------------------------

PARAM_SHAPES = {"layer1.weight": (6, 5), "layer1.bias": (6,), "fc.weight": (3, 6), "fc.bias": (3,)}


def make_params_and_grads():
    g = torch.Generator().manual_seed(7)
    params = {n: torch.randn(s, generator=g) for n, s in PARAM_SHAPES.items()}
    grads = []
    for k in range(STEPS):
        step = {}
        for n, s in PARAM_SHAPES.items():
            # large early gradients, then small ones: AMSGrad's running max then matters
            x = torch.randn(s, generator=g) * (0.2 + 2.0 * torch.rand((), generator=g)) * (5.0 if k < 4 else 1.0)
            x[torch.rand(s, generator=g) < 0.05] = 0.0  # exact zeros: Adagrad / RMSprop edge
            step[n] = x
        grads.append(step)
    return params, grads


def resolve(groups, freeze):
    """nnserve's param-groups.ts rules, for building the torch groups."""
    names = list(PARAM_SHAPES)
    owned, out = set(), []
    for spec in groups:
        spec = dict(spec)
        pats = spec.pop("params")
        req = spec.pop("requires_grad", True)
        members = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in pats)]
        owned.update(members)
        out.append((members, req, spec))
    rest = [n for n in names if n not in owned]
    if rest or not out:
        out.append((rest, True, {}))
    frozen = {n for n in names if any(fnmatch.fnmatchcase(n, p) for p in freeze)}
    for members, req, _ in out:
        if not req:
            frozen.update(members)
    return out, frozen


OPTIMIZER_CASES = [
    ("SGD plain", "SGD", {"lr": 0.1}, [], []),
    ("SGD momentum dampening weight_decay", "SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}, [], []),
    ("SGD nesterov", "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}, [], []),
    ("SGD maximize, groups, frozen", "SGD", {"lr": 0.02, "momentum": 0.5, "maximize": True},
     [{"params": ["fc.*"], "lr": 0.1, "weight_decay": 0.05}], ["layer1.bias"]),
    ("Adam defaults", "Adam", {"lr": 1e-2}, [], []),
    ("Adam amsgrad weight_decay betas", "Adam", {"lr": 1e-2, "amsgrad": True, "weight_decay": 0.1, "betas": [0.8, 0.99]}, [], []),
    ("Adam maximize, groups, requires_grad false", "Adam", {"lr": 5e-3, "maximize": True},
     [{"params": ["fc.weight"], "lr": 2e-2, "betas": [0.5, 0.9], "eps": 1e-2}, {"params": ["layer1.bias"], "requires_grad": False}], []),
    ("AdamW defaults", "AdamW", {"lr": 1e-2}, [], []),
    ("AdamW amsgrad, groups, frozen", "AdamW", {"lr": 1e-2, "amsgrad": True, "weight_decay": 0.1, "betas": [0.9, 0.9]},
     [{"params": ["layer1.*"], "lr": 3e-2, "weight_decay": 0.0}], ["fc.bias"]),
    ("RMSprop defaults", "RMSprop", {"lr": 1e-2}, [], []),
    ("RMSprop centered momentum weight_decay", "RMSprop", {"lr": 1e-2, "centered": True, "momentum": 0.9, "weight_decay": 0.01}, [], []),
    ("RMSprop momentum", "RMSprop", {"lr": 5e-3, "momentum": 0.8, "alpha": 0.95}, [], []),
    ("RMSprop centered maximize, groups, frozen", "RMSprop", {"lr": 1e-2, "centered": True, "alpha": 0.9, "maximize": True},
     [{"params": ["fc.*"], "lr": 1e-3, "momentum": 0.5}], ["layer1.bias"]),
    ("Adagrad defaults", "Adagrad", {"lr": 0.1}, [], []),
    ("Adagrad lr_decay weight_decay initial_accumulator_value eps", "Adagrad",
     {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01, "initial_accumulator_value": 0.1, "eps": 0.1}, [], []),
    ("Adagrad maximize, groups, frozen", "Adagrad", {"lr": 0.05, "maximize": True},
     [{"params": ["fc.weight", "layer1.weight"], "lr": 0.2, "weight_decay": 0.1}], ["fc.bias"]),
]


def to_torch_options(options):
    o = dict(options)
    if "betas" in o:
        o["betas"] = tuple(o["betas"])
    o["foreach"] = False  # the _single_tensor_* reference
    return o


def run_optimizer_case(params0, grads, cls_name, options, groups, freeze):
    params = {n: p.clone().requires_grad_(True) for n, p in params0.items()}
    resolved, frozen = resolve(groups, freeze)
    for n in frozen:
        params[n].requires_grad_(False)
    torch_groups = []
    for members, _, spec in resolved:
        g = {"params": [params[n] for n in members]}
        g.update(to_torch_options(spec) if spec else {})
        g.pop("foreach", None)
        torch_groups.append(g)
    opt = getattr(torch.optim, cls_name)(torch_groups, **to_torch_options(options))
    steps = []
    for k in range(STEPS):
        for n, p in params.items():
            p.grad = None if n in frozen else grads[k][n].clone()
        opt.step()
        steps.append({n: b64(p) for n, p in params.items()})
    return steps


def make_optimizers():
    params0, grads = make_params_and_grads()
    cases = []
    for name, cls_name, options, groups, freeze in OPTIMIZER_CASES:
        cases.append({
            "name": name, "optimizer": cls_name, "options": options, "param_groups": groups, "freeze": freeze,
            "steps": run_optimizer_case(params0, grads, cls_name, options, groups, freeze),
        })
    write_json("optimizers.json", {
        "torch": torch.__version__,
        "shapes": {n: list(s) for n, s in PARAM_SHAPES.items()},
        "params": {n: b64(p) for n, p in params0.items()},
        "grads": [{n: b64(g) for n, g in step.items()} for step in grads],
        "cases": cases,
    })


# --- LR schedulers ---------------------------------------------------------------------------

def make_torch_scheduler(opt, spec):
    """nnserve's scheduler spec -> the torch scheduler a user would write."""
    spec = dict(spec)
    name = spec.pop("name")
    spec.pop("interval", None)
    warmup = spec.pop("warmup", None)
    if warmup is not None:
        first = S.LinearLR(opt, start_factor=warmup.get("start_factor", 1 / 3), end_factor=warmup.get("end_factor", 1.0),
                           total_iters=warmup["total_iters"])
        main = make_torch_scheduler(opt, dict(spec, name=name))
        return S.SequentialLR(opt, [first, main], milestones=[warmup["total_iters"]])
    if name == "SequentialLR":
        inner = [make_torch_scheduler(opt, s) for s in spec["schedulers"]]
        return S.SequentialLR(opt, inner, milestones=spec["milestones"])
    if name == "OneCycleLR" and "pct_start" in spec:
        spec["pct_start"] = float(spec["pct_start"])
    return getattr(S, name)(opt, **spec)


SCHEDULER_CASES = [
    ("StepLR", "SGD", {"name": "StepLR", "step_size": 7, "gamma": 0.5}, 130),
    ("MultiStepLR repeated milestone", "SGD", {"name": "MultiStepLR", "milestones": [10, 30, 30, 75], "gamma": 0.3}, 120),
    ("ExponentialLR", "Adam", {"name": "ExponentialLR", "gamma": 0.97}, 150),
    ("CosineAnnealingLR past T_max", "SGD", {"name": "CosineAnnealingLR", "T_max": 30, "eta_min": 0.001}, 130),
    ("CosineAnnealingLR", "Adam", {"name": "CosineAnnealingLR", "T_max": 100}, 120),
    ("LinearLR warm-up", "SGD", {"name": "LinearLR", "start_factor": 0.1, "total_iters": 10}, 110),
    ("LinearLR decay", "Adam", {"name": "LinearLR", "start_factor": 1.0, "end_factor": 0.2, "total_iters": 50}, 110),
    ("OneCycleLR cos, SGD momentum", "SGD", {"name": "OneCycleLR", "max_lr": 0.1, "total_steps": 120}, 120),
    ("OneCycleLR linear three_phase, Adam beta1", "Adam",
     {"name": "OneCycleLR", "max_lr": 0.05, "total_steps": 130, "anneal_strategy": "linear", "three_phase": True}, 130),
    ("OneCycleLR per-group max_lr, epochs", "SGD",
     {"name": "OneCycleLR", "max_lr": [0.1, 0.02], "epochs": 10, "steps_per_epoch": 12, "pct_start": 0.25, "div_factor": 10,
      "final_div_factor": 100, "base_momentum": 0.8, "max_momentum": 0.9}, 120),
    ("OneCycleLR no momentum cycling", "Adam", {"name": "OneCycleLR", "max_lr": 0.01, "total_steps": 100, "cycle_momentum": False}, 100),
    ("warm-up then CosineAnnealingLR", "SGD",
     {"name": "CosineAnnealingLR", "T_max": 100, "eta_min": 1e-4, "warmup": {"start_factor": 0.01, "total_iters": 10}}, 120),
    ("SequentialLR of three", "Adam",
     {"name": "SequentialLR", "milestones": [5, 40], "schedulers": [
         {"name": "LinearLR", "start_factor": 0.5, "total_iters": 5},
         {"name": "StepLR", "step_size": 10, "gamma": 0.5},
         {"name": "ExponentialLR", "gamma": 0.95}]}, 120),
]


def make_schedulers():
    cases = []
    for name, opt_name, spec, steps in SCHEDULER_CASES:
        a, b = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
        groups = [{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.01}]
        opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9) if opt_name == "SGD" else torch.optim.Adam(groups, lr=0.1)
        sched = make_torch_scheduler(opt, spec)
        lrs, momenta = [], []

        def record():
            lrs.append([g["lr"] for g in opt.param_groups])
            momenta.append([g["momentum"] if opt_name == "SGD" else g["betas"][0] for g in opt.param_groups])

        record()
        for _ in range(steps - 1):
            opt.step()
            sched.step()
            record()
        # per param group: the value after construction, then after each step
        cases.append({"name": name, "optimizer": opt_name, "group_lrs": [0.1, 0.01], "spec": spec,
                      "lrs": [list(x) for x in zip(*lrs)], "momentum": [list(x) for x in zip(*momenta)]})
    write_json("schedulers.json", {"torch": torch.__version__, "cases": cases})


# --- gradient clipping -----------------------------------------------------------------------

def make_clip():
    g = torch.Generator().manual_seed(11)
    shapes = [(4, 5), (7,), (2, 3, 2)]
    cases = []
    for max_norm, norm_type, scale in [(1.0, 2.0, 1.0), (0.5, "inf", 1.0), (2.0, 1.0, 1.0), (1.5, 3.0, 1.0), (100.0, 2.0, 1.0), (0.1, 2.0, 10.0)]:
        grads = [torch.randn(s, generator=g) * scale for s in shapes]
        ps = [torch.zeros(s, requires_grad=True) for s in shapes]
        for p, x in zip(ps, grads):
            p.grad = x.clone()
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type=math.inf if norm_type == "inf" else norm_type)
        cases.append({"kind": "norm", "max_norm": max_norm, "norm_type": norm_type, "shapes": [list(s) for s in shapes],
                      "grads": [b64(x) for x in grads], "total_norm": float(total), "clipped": [b64(p.grad) for p in ps]})
    grads = [torch.randn(s, generator=g) for s in shapes]
    ps = [torch.zeros(s, requires_grad=True) for s in shapes]
    for p, x in zip(ps, grads):
        p.grad = x.clone()
    torch.nn.utils.clip_grad_value_(ps, 0.5)
    cases.append({"kind": "value", "clip_value": 0.5, "shapes": [list(s) for s in shapes],
                  "grads": [b64(x) for x in grads], "clipped": [b64(p.grad) for p in ps]})
    write_json("clip.json", {"torch": torch.__version__, "cases": cases})


# --- Fashion-MNIST facts ---------------------------------------------------------------------

def make_fashion_mnist():
    if not os.path.isdir(fashion_mnist.DIR):
        print(f"skipping fashion-mnist.json: no {fashion_mnist.DIR}", file=sys.stderr)
        return
    out = {}
    for split in ["train", "test"]:
        images, labels = fashion_mnist.load(split)
        first = images[0].astype(np.float64)
        out[split] = {
            "count": int(images.shape[0]), "image_dims": list(images.shape[1:]),
            "first_labels": [int(x) for x in labels[:32]],
            "label_counts": [int((labels == c).sum()) for c in range(10)],
            "first_image_pixel_sum": int(first.sum()),
            # ToTensor's value (float32 division) at a few positions of image 0 and of the last image
            "probes": [{"index": i, "row": r, "col": c, "value": float(np.float32(images[i, r, c]) / np.float32(255))}
                       for i in (0, int(images.shape[0]) - 1) for r, c in ((14, 14), (5, 20), (27, 0), (10, 9))],
            "mean": float(images.astype(np.float64).mean() / 255), "std": float((images.astype(np.float64) / 255).std()),
        }
    write_json("fashion-mnist.json", out)


# --- ImageFolder -----------------------------------------------------------------------------

def make_image_folder():
    from PIL import Image
    import torchvision
    from torchvision import transforms

    root = os.path.join(OUT, "image-folder")
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(3)

    def png(rel, mode="RGB"):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shape = (4, 5, 3) if mode == "RGB" else (4, 5)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)

    png("cat/b.png")
    png("cat/A.PNG")
    png("cat/sub/c.png")
    png("cat/sub dir/d.png", "L")
    png("ant/z/y.png")
    png("ant/x.png")
    png("dog/0.png")
    with open(os.path.join(root, "cat", "notes.txt"), "w") as f:
        f.write("not an image\n")
    with open(os.path.join(root, "dog", ".hidden"), "w") as f:
        f.write("ignored by extension\n")

    ds = torchvision.datasets.ImageFolder(root, transform=transforms.ToTensor())
    write_json("image-folder.json", {
        "torchvision": torchvision.__version__,
        "classes": ds.classes,
        "samples": [[os.path.relpath(p, root), c] for p, c in ds.samples],
        "tensors": [b64(ds[i][0]) for i in range(len(ds))],
        "dims": list(ds[0][0].shape),
    })


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    make_optimizers()
    make_schedulers()
    make_clip()
    make_fashion_mnist()
    make_image_folder()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
