#!/usr/bin/env python3
"""Export a PyTorch model for nnserve: ``architecture.json`` + ``weights.safetensors``.

    from torch_export import export
    export(model, example_input, "out/")      # example_input: a tensor or a tuple of tensors

An ``nn.Sequential`` of torch.nn layers is written as a Sequential list (no tracing). Any other
model is traced with torch.fx (``symbolic_trace``) and written as a graph of placeholder /
call_module / call_function / call_method / output nodes, its modules under their state_dict
prefixes. The weights are ``model.state_dict()`` in the safetensors format, written here by
hand (8-byte little-endian header length, JSON header, raw little-endian data), so the
safetensors package is not needed.

Command line:  python3 tools/torch_export.py torchvision.models:resnet18 out/ --input-shape 1,3,224,224

Works with PyTorch 1.13 (Debian's python3-torch) and later. See docs/architecture.md.
"""
import argparse
import dis
import importlib
import inspect
import json
import os
import struct
import sys
from contextlib import contextmanager

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.node import _get_qualified_name

FORMAT = "nnserve.architecture/1"


class ExportError(Exception):
    pass


# Constructor arguments by class, in PyTorch's positional order. Values are read back from the
# module's attributes of the same name (PyTorch stores each constructor argument that way).
_CONV = ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias", "padding_mode"]
_CONVT = ["in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding", "groups", "bias", "dilation", "padding_mode"]
_RNN = ["input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional"]
_MAXPOOL = ["kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"]
_AVGPOOL = ["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"]
_BN = ["num_features", "eps", "momentum", "affine", "track_running_stats"]
_DROPOUT = ["p", "inplace"]

LAYER_ARGS = {
    "Linear": ["in_features", "out_features", "bias"],
    "Identity": [],
    "Flatten": ["start_dim", "end_dim"],
    "Unflatten": ["dim", "unflattened_size"],
    "ReLU": ["inplace"], "LeakyReLU": ["negative_slope", "inplace"], "Sigmoid": [], "Tanh": [],
    "GELU": ["approximate"], "ELU": ["alpha", "inplace"], "SiLU": ["inplace"], "Softmax": ["dim"], "LogSoftmax": ["dim"],
    "ReLU6": ["inplace"], "Hardtanh": ["min_val", "max_val", "inplace"], "Softplus": ["beta", "threshold"],
    "Hardswish": ["inplace"], "Hardsigmoid": ["inplace"], "Mish": ["inplace"], "Softsign": [], "PReLU": ["num_parameters"],
    "Dropout": _DROPOUT, "Dropout1d": _DROPOUT, "Dropout2d": _DROPOUT, "Dropout3d": _DROPOUT, "AlphaDropout": _DROPOUT,
    "BatchNorm1d": _BN, "BatchNorm2d": _BN, "BatchNorm3d": _BN,
    "LayerNorm": ["normalized_shape", "eps", "elementwise_affine"],
    "GroupNorm": ["num_groups", "num_channels", "eps", "affine"],
    "Conv1d": _CONV, "Conv2d": _CONV, "Conv3d": _CONV,
    "ConvTranspose1d": _CONVT, "ConvTranspose2d": _CONVT, "ConvTranspose3d": _CONVT,
    "MaxPool1d": _MAXPOOL, "MaxPool2d": _MAXPOOL, "MaxPool3d": _MAXPOOL,
    "AvgPool1d": _AVGPOOL, "AvgPool2d": _AVGPOOL + ["divisor_override"], "AvgPool3d": _AVGPOOL + ["divisor_override"],
    "AdaptiveAvgPool1d": ["output_size"], "AdaptiveAvgPool2d": ["output_size"], "AdaptiveAvgPool3d": ["output_size"],
    "AdaptiveMaxPool1d": ["output_size", "return_indices"], "AdaptiveMaxPool2d": ["output_size", "return_indices"],
    "Embedding": ["num_embeddings", "embedding_dim", "padding_idx", "max_norm", "norm_type", "scale_grad_by_freq", "sparse"],
    "RNN": _RNN + ["nonlinearity"], "LSTM": _RNN + ["proj_size"], "GRU": _RNN,
}

# nn.RNN/LSTM/GRU take *args, **kwargs, so their defaults cannot be read from the signature.
_RNN_DEFAULTS = {"num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0, "bidirectional": False,
                 "nonlinearity": "tanh", "proj_size": 0}


# Arguments PyTorch accepts as an int or a tuple (_pair, _single): (3, 3) is written 3.
_INT_OR_TUPLE = {"kernel_size", "stride", "padding", "dilation", "output_padding"}


def _json_value(v):
    if isinstance(v, (tuple, list, torch.Size)):
        return [_json_value(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise ExportError(f"cannot write {v!r} ({type(v).__name__}) to JSON")


def _same(value, default):
    if isinstance(value, (list, tuple)) and not isinstance(default, (list, tuple)):
        return all(x == default for x in value)
    return _json_value(value) == _json_value(default) if isinstance(default, (list, tuple)) else value == default


def _is_layer(m):
    return type(m).__name__ in LAYER_ARGS and type(m).__module__.startswith("torch.nn")


def module_json(m):
    """{"type": "Conv2d", "in_channels": 3, ...}: arguments that differ from PyTorch's defaults."""
    kind = type(m).__name__
    if not _is_layer(m):
        raise ExportError(f"{kind} is not a torch.nn layer nnserve knows (supported: {', '.join(sorted(LAYER_ARGS))})")
    try:
        sig = inspect.signature(type(m).__init__).parameters
    except (TypeError, ValueError):
        sig = {}
    out = {"type": kind}
    for name in LAYER_ARGS[kind]:
        value = getattr(m, name)
        if name == "bias":
            value = value is not None and value is not False
        p = sig.get(name)
        default = p.default if p is not None and p.default is not inspect.Parameter.empty else _RNN_DEFAULTS.get(name, inspect.Parameter.empty)
        if default is not inspect.Parameter.empty and _same(value, default):
            continue
        value = _json_value(value)
        if name in _INT_OR_TUPLE and isinstance(value, list) and value and all(v == value[0] for v in value):
            value = value[0]
        out[name] = value
    return out


def _sequential_json(seq):
    names = [n for n, _ in seq.named_children()]
    items = {}
    for name, child in seq.named_children():
        items[name] = _sequential_json(child) if type(child) is nn.Sequential else module_json(child)
    if names == [str(i) for i in range(len(names))]:
        return {"type": "Sequential", "modules": list(items.values())}
    return {"type": "Sequential", "modules": items}


def _is_plain_sequential(model):
    return type(model) is nn.Sequential and all(
        _is_plain_sequential(c) if type(c) is nn.Sequential else _is_layer(c) for c in model.children())


@contextmanager
def _fx_iter_fix():
    """torch 1.13's Proxy.__iter__ indexes bytecode by f_lasti // 2, which is wrong on Python 3.11
    (inline caches); find the instruction by its offset instead so `out, h = self.rnn(x)` traces."""
    proxy_cls = torch.fx.proxy.Proxy
    original = proxy_cls.__iter__

    def __iter__(self):
        frame = inspect.currentframe().f_back
        for inst in dis.get_instructions(frame.f_code):
            if inst.offset == frame.f_lasti:
                if inst.opname == "UNPACK_SEQUENCE":
                    return (self[i] for i in range(inst.argval))
                break
        return self.tracer.iter(self)

    proxy_cls.__iter__ = __iter__
    try:
        yield
    finally:
        proxy_cls.__iter__ = original


def _arg_json(a, where):
    if isinstance(a, torch.fx.Node):
        return a.name
    if isinstance(a, (tuple, list)):
        return [_arg_json(x, where) for x in a]
    if isinstance(a, slice):
        return {"slice": [_arg_json(a.start, where), _arg_json(a.stop, where), _arg_json(a.step, where)]}
    if a is Ellipsis:
        return "..."
    if isinstance(a, torch.Size):
        return list(a)
    if a is None or isinstance(a, (bool, int, float, str)):
        return a
    raise ExportError(f"{where}: argument {a!r} ({type(a).__name__}) cannot be written to the architecture")


def _target_name(node):
    """The public name of a call_function target: F.gelu is torch._C._nn.gelu underneath."""
    if node.op != "call_function":
        return str(node.target)
    fn = node.target
    name = getattr(fn, "__name__", "")
    for public, namespace in (("torch.nn.functional", F), ("torch", torch)):
        if name and getattr(namespace, name, None) is fn:
            return f"{public}.{name}"
    qualified = _get_qualified_name(fn)
    if qualified.startswith("_operator."):
        return "operator." + qualified[len("_operator."):]
    if "." not in qualified:
        return "builtins." + qualified
    return qualified


def _graph_json(model, names, inputs, output_names):
    with _fx_iter_fix():
        concrete = {n: None for n, x in zip(names, inputs) if x is None}
        gm = torch.fx.symbolic_trace(model, concrete_args=concrete or None)
    graph = gm.graph
    # Arguments specialised to None (concrete_args) leave an assert and an unused placeholder.
    for n in list(graph.nodes):
        if n.op == "call_function" and getattr(n.target, "__name__", "") == "_assert_is_none":
            graph.erase_node(n)
    graph.eliminate_dead_code()
    placeholder_names = {}
    for i, n in enumerate([n for n in graph.nodes if n.op == "placeholder"]):
        if i < len(inputs) and inputs[i] is None:
            graph.erase_node(n)
        elif i < len(names):
            placeholder_names[n.target] = names[i]

    nodes, used_modules = [], set()
    for n in graph.nodes:
        where = f'node "{n.name}"'
        entry = {"op": n.op, "name": n.name}
        if n.op == "placeholder":
            entry["target"] = placeholder_names.get(n.target, n.target)
        elif n.op == "output":
            entry["args"] = [_arg_json(n.args[0], where)]
            if output_names:
                entry["names"] = list(output_names)
        elif n.op == "get_attr":
            raise ExportError(f"{where} reads the parameter {n.target} outside a torch.nn layer; nnserve compiles torch.nn layers only")
        else:
            entry["target"] = _target_name(n)
            entry["args"] = [_arg_json(a, where) for a in n.args]
            if n.kwargs:
                entry["kwargs"] = {k: _arg_json(v, where) for k, v in n.kwargs.items()}
            if n.op == "call_module":
                used_modules.add(n.target)
        nodes.append(entry)

    modules = {}
    for name, m in model.named_modules():
        if name == "" or list(m.children()):
            continue
        if not _is_layer(m):
            if name in used_modules or list(m.parameters(recurse=False)) or list(m.buffers(recurse=False)):
                raise ExportError(f'module "{name}" ({type(m).__name__}) is not a torch.nn layer nnserve knows')
            continue
        modules[name] = module_json(m)
    for name, m in model.named_modules():
        if list(m.children()) and (list(m.parameters(recurse=False)) or list(m.buffers(recurse=False))):
            raise ExportError(f'module "{name or type(model).__name__}" ({type(m).__name__}) holds its own parameters; only torch.nn layers can')
    return modules, nodes


def _input_names(model, n):
    params = list(inspect.signature(model.forward).parameters)
    return params[:n] if len(params) >= n else [f"input_{i}" for i in range(n)]


def _recurrent_state_inputs(model, names):
    """Inputs passed as h0 / (h0, c0) of an RNN have their batch at axis 1."""
    if type(model) is nn.Sequential:
        return set()
    found = set()
    try:
        with _fx_iter_fix():
            gm = torch.fx.symbolic_trace(model)
    except Exception:
        return found
    mods = dict(gm.named_modules())
    for n in gm.graph.nodes:
        if n.op == "call_module" and isinstance(mods.get(n.target), nn.RNNBase) and len(n.args) > 1:
            for a in n.args[1] if isinstance(n.args[1], (tuple, list)) else [n.args[1]]:
                if isinstance(a, torch.fx.Node) and a.op == "placeholder":
                    found.add(a.target)
    return found & set(names)


SAFETENSORS_DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}


def _tensor_bytes(t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    data = t.numpy().tobytes()
    if sys.byteorder != "little":
        raise ExportError("safetensors data is little-endian; export on a little-endian machine")
    return data


def save_safetensors(tensors, path, metadata=None):
    """Writes {name: tensor} as safetensors: u64-LE header length, JSON header, raw data."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        if t.dtype not in SAFETENSORS_DTYPES:
            raise ExportError(f'tensor "{name}" has dtype {t.dtype}, which safetensors cannot hold')
        data = _tensor_bytes(t)
        header[name] = {"dtype": SAFETENSORS_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - (8 + len(head)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)


def architecture(model, example_input, dynamic_axes=None, output_names=None, input_names=None, name=None):
    """The architecture JSON (a dict) for `model` called as `model(*example_input)`.

    dynamic_axes: {input_name: {axis: "name"}}; by default axis 0 of every input is "batch",
    except inputs used as an RNN's initial state (h0, c0), whose batch is axis 1.
    """
    inputs = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    names = list(input_names) if input_names else _input_names(model, len(inputs))
    state_inputs = _recurrent_state_inputs(model, names) if dynamic_axes is None else set()
    specs = []
    for n, x in zip(names, inputs):
        if x is None:
            continue
        if not isinstance(x, torch.Tensor):
            raise ExportError(f'input "{n}" must be a tensor or None')
        if x.dtype not in (torch.float32, torch.int64):
            raise ExportError(f'input "{n}" has dtype {x.dtype}; nnserve inputs are float32 or int64')
        axes = (dynamic_axes or {}).get(n, {} if dynamic_axes is not None else ({1: "batch"} if n in state_inputs else {0: "batch"}))
        shape = [axes.get(i, d) for i, d in enumerate(x.shape)]
        specs.append({"name": n, "dtype": "float32" if x.dtype == torch.float32 else "int64", "shape": shape})

    arch = {"format": FORMAT, "name": name or type(model).__name__, "inputs": specs}
    if _is_plain_sequential(model) and len(specs) == 1 and not output_names:
        arch["sequential"] = _sequential_json(model)["modules"]
    else:
        modules, graph = _graph_json(model, names, inputs, output_names)
        arch["modules"] = modules
        arch["graph"] = graph
    return arch


def _inline(v):
    return json.dumps(v, separators=(", ", ": "))


def dumps(arch):
    """JSON laid out for reading: one input, module or graph node per line."""
    lines = ["{"]
    keys = list(arch)
    for i, k in enumerate(keys):
        v = arch[k]
        end = "," if i < len(keys) - 1 else ""
        if k in ("inputs", "sequential", "graph") and isinstance(v, list):
            lines.append(f'  "{k}": [')
            lines += [f"    {_inline(x)}{',' if j < len(v) - 1 else ''}" for j, x in enumerate(v)]
            lines.append(f"  ]{end}")
        elif k in ("modules", "sequential") and isinstance(v, dict):
            lines.append(f'  "{k}": {{')
            items = list(v.items())
            lines += [f"    {_inline(n)}: {_inline(m)}{',' if j < len(items) - 1 else ''}" for j, (n, m) in enumerate(items)]
            lines.append(f"  }}{end}")
        else:
            lines.append(f"  {_inline(k)}: {_inline(v)}{end}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def export(model, example_input, out_dir, dynamic_axes=None, output_names=None, input_names=None, name=None):
    """Writes out_dir/architecture.json and out_dir/weights.safetensors; returns their paths."""
    was_training = model.training
    model.eval()
    try:
        arch = architecture(model, example_input, dynamic_axes, output_names, input_names, name)
    finally:
        model.train(was_training)
    os.makedirs(out_dir, exist_ok=True)
    arch_path = os.path.join(out_dir, "architecture.json")
    weights_path = os.path.join(out_dir, "weights.safetensors")
    with open(arch_path, "w") as f:
        f.write(dumps(arch))
    save_safetensors(model.state_dict(), weights_path, {"format": "pt"})
    return arch_path, weights_path


def _main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("factory", help="module:callable returning the model, e.g. torchvision.models:resnet18")
    p.add_argument("out_dir")
    p.add_argument("--input-shape", required=True, help="example input shape, e.g. 1,3,224,224")
    p.add_argument("--dtype", default="float32", choices=["float32", "int64"])
    p.add_argument("--weights", help="a state_dict (.pth) to load into the model first")
    p.add_argument("--seed", type=int, default=0, help="torch.manual_seed for the model's random init and the example input")
    p.add_argument("--save-pth", action="store_true", help="also write model.pth with torch.save(model.state_dict())")
    p.add_argument("--example-io", action="store_true",
                   help="also write io.safetensors: a random input ('input.<name>') and the model's output ('output.<name>')")
    a = p.parse_args(argv)
    torch.manual_seed(a.seed)
    module, _, attr = a.factory.partition(":")
    model = getattr(importlib.import_module(module), attr)()
    if a.weights:
        model.load_state_dict(torch.load(a.weights, map_location="cpu"))
    model.eval()
    shape = [int(s) for s in a.input_shape.split(",")]
    x = torch.randn(shape) if a.dtype == "float32" else torch.zeros(shape, dtype=torch.int64)
    for path in export(model, x, a.out_dir):
        print(path)
    if a.save_pth:
        torch.save(model.state_dict(), os.path.join(a.out_dir, "model.pth"))
    if a.example_io:
        with torch.no_grad():
            y = model(x)
        outputs = [y] if isinstance(y, torch.Tensor) else list(y)
        names = ["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))]
        name = architecture(model, x)["inputs"][0]["name"]
        tensors = {"input." + name: x, **{"output." + n: t for n, t in zip(names, outputs)}}
        save_safetensors(tensors, os.path.join(a.out_dir, "io.safetensors"))


if __name__ == "__main__":
    _main(sys.argv[1:])
