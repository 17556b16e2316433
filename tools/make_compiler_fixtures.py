#!/usr/bin/python3
"""Makes the architecture compiler's golden fixtures with PyTorch (Debian's torch 1.13 works).

    /usr/bin/python3 tools/make_compiler_fixtures.py

Writes test/fixtures/compiler/:
  golden/<case>/architecture.json   written by tools/torch_export.py (so the exporter is tested too)
  golden/<case>/weights.safetensors model.state_dict()
  golden/<case>/weights.pth         torch.save(model.state_dict()) (some with strided/shared storages)
  golden/<case>/io.safetensors      "input.<name>" tensors and PyTorch's "output.<name>" in eval mode
  resnet18/                         torchvision resnet18: architecture, input and output for the
                                    deterministic weights of synthetic_weight() (not committed: 45 MB;
                                    test/compiler/synthetic-weights.ts makes the same ones)
  bad-weights/                      malicious, corrupt and truncated weight files
and examples/architectures/*.json for the seed tutorial's models and resnet18.
"""
import collections
import io
import math
import os
import pickle
import shutil
import struct
import sys
import zipfile
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import torch_export  # noqa: E402

OUT = os.path.join(ROOT, "test", "fixtures", "compiler")
EXAMPLES = os.path.join(ROOT, "examples", "architectures")


# --- the seed tutorial's models, as written there -------------------------------------------

class MyModel(nn.Module):
    def __init__(self):
        super(MyModel, self).__init__()
        self.linear1 = nn.Linear(3, 4)
        self.linear2 = nn.Linear(4, 1)

    def forward(self, x):
        x = torch.relu(self.linear1(x))
        x = self.linear2(x)
        return x


class NeuralNet(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(NeuralNet, self).__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        out = self.fc1(x)
        out = self.relu(out)
        out = self.fc2(out)
        return out


class SimpleCNN(nn.Module):
    def __init__(self):
        super(SimpleCNN, self).__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 8 * 8, 128)
        self.fc2 = nn.Linear(128, 10)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = x.view(-1, 32 * 8 * 8)
        x = self.relu(self.fc1(x))
        x = self.fc2(x)
        return x


class SimpleRNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(SimpleRNN, self).__init__()
        self.rnn = nn.RNN(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x, hidden):
        out, hidden = self.rnn(x, hidden)
        out = self.fc(out)
        return out, hidden


class LSTMModel(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(LSTMModel, self).__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        out, _ = self.lstm(x)
        out = self.fc(out)
        return out


class CharRNN(nn.Sequential):
    """The seed's char-level model, nn.Sequential(Embedding(5, 8), RNN(8, 16, batch_first=True),
    Linear(16, 5)), with the one change that makes it run: a Sequential would hand the RNN's
    (output, h_n) tuple to the Linear, so forward takes the output out. Same state_dict keys."""

    def __init__(self, vocab=5):
        super().__init__(nn.Embedding(vocab, 8), nn.RNN(8, 16, batch_first=True), nn.Linear(16, vocab))

    def forward(self, x):
        out, _ = self[1](self[0](x))
        return self[2](out)


# --- models for the functions and methods a forward calls ----------------------------------

class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(65, 4)

    def forward(self, x):
        y = F.relu(self.conv(x))
        y = F.max_pool2d(y, 2)
        a = torch.flatten(y, 1)
        b = y.view(y.size(0), -1)
        c = y.reshape(-1, 64)
        s = a + b * 0.5 - c
        s = torch.cat([s, a.mean(dim=1, keepdim=True)], dim=1)
        p = y.permute(0, 2, 3, 1)
        t = p.transpose(1, 2).contiguous()
        m = torch.matmul(t, t)
        z = m.sum(dim=(1, 2))
        out = self.fc(s)
        return torch.softmax(out + z, dim=-1), F.log_softmax(out, 1), torch.sigmoid(out) * torch.tanh(z)


class Functional2(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3)

    def forward(self, x):
        n = x.shape[0]
        y = F.gelu(self.conv(x), approximate="tanh")
        y = F.avg_pool2d(y, 2, stride=1)
        g = F.adaptive_avg_pool2d(y, (1, 1)).view(n, 3)
        u = g.unsqueeze(1).squeeze(1)
        st = torch.stack([u, 2 * u, u - 1.0], dim=1)
        d = F.dropout(st, 0.3, training=False)
        e = torch.exp(-torch.abs(d)) / (1 + x[:, :1, 0, 0:3])
        return d.mean(-1), e, torch.relu(x[..., 1, :]).sum(-1), F.silu(x[:, 1]) + F.elu(x[:, 0], 0.5) - F.leaky_relu(x[:, 0], 0.2)


class RNNOutputs(nn.Module):
    """getitem on RNN outputs: the last time step and the top layer's final state."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 5, num_layers=2, batch_first=True)
        self.gru = nn.GRU(5, 4, batch_first=True)
        self.fc = nn.Linear(9, 2)

    def forward(self, x):
        out, (h, c) = self.lstm(x)
        g_out, g_h = self.gru(out)
        last = out[:, -1, :]
        return self.fc(torch.cat([last, g_h[-1]], dim=1)), g_out[:, 1:3]


class WithState(nn.Module):
    """An RNN called with its initial state."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x, h0):
        return self.rnn(x, h0)


class LSTMWithState(nn.Module):
    def __init__(self, lstm):
        super().__init__()
        self.lstm = lstm

    def forward(self, x, h0, c0):
        return self.lstm(x, (h0, c0))


# --- cases ------------------------------------------------------------------------------------

def randn(*shape, scale=1.0):
    return torch.randn(*shape) * scale


def seq(*layers):
    return nn.Sequential(*layers)


def cases():
    """(name, model factory, example inputs factory, options)."""
    c = []

    def add(name, model, inputs, **opts):
        c.append((name, model, inputs, opts))

    x2 = lambda *s: (lambda: (randn(*s, scale=2.0),))
    # Linear / Identity / Flatten / Unflatten
    add("linear", lambda: seq(nn.Linear(5, 4)), x2(3, 5), strided_pth=True)
    add("linear_no_bias_3d", lambda: seq(nn.Linear(5, 4, bias=False)), x2(2, 3, 5))
    add("identity", lambda: seq(nn.Identity(), nn.Linear(3, 2), nn.Identity(54, unused="x")), x2(2, 3))
    add("flatten", lambda: seq(nn.Flatten()), x2(2, 3, 4, 5))
    add("flatten_middle", lambda: seq(nn.Flatten(1, 2), nn.Linear(5, 2)), x2(2, 3, 4, 5))
    add("sequential_nested_named", lambda: nn.Sequential(collections.OrderedDict([
        ("features", seq(nn.Conv2d(2, 4, 3), nn.ReLU(), seq(nn.Conv2d(4, 4, 1), nn.Tanh()))),
        ("pool", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("head", nn.Linear(4, 3))])), x2(2, 2, 5, 5))
    add("unflatten", lambda: seq(nn.Unflatten(1, (2, 6)), nn.Linear(6, 3)), x2(2, 12))
    # activations
    for name, layer in [
        ("relu", nn.ReLU()), ("leaky_relu", nn.LeakyReLU(0.2)), ("sigmoid", nn.Sigmoid()), ("tanh", nn.Tanh()),
        ("gelu", nn.GELU()), ("gelu_tanh", nn.GELU(approximate="tanh")), ("elu", nn.ELU(0.5)), ("silu", nn.SiLU()),
        ("softmax", nn.Softmax(dim=1)), ("log_softmax", nn.LogSoftmax(dim=-1)), ("softmax_implicit_dim", nn.Softmax()),
        ("relu6", nn.ReLU6()), ("hardtanh", nn.Hardtanh(-0.5, 1.5)), ("softplus", nn.Softplus(beta=2, threshold=1)),
        ("hardswish", nn.Hardswish()), ("hardsigmoid", nn.Hardsigmoid()), ("mish", nn.Mish()), ("softsign", nn.Softsign()),
        ("prelu", nn.PReLU(3)),
    ]:
        add(name, (lambda l: lambda: seq(l))(layer), x2(2, 3, 4))
    # dropout (eval: identity)
    add("dropout", lambda: seq(nn.Linear(4, 6), nn.Dropout(0.5), nn.Linear(6, 2)), x2(3, 4))
    add("dropout2d", lambda: seq(nn.Conv2d(2, 3, 1), nn.Dropout2d(0.3)), x2(2, 2, 4, 4))
    # normalization
    add("batchnorm1d", lambda: seq(nn.Linear(3, 6), nn.BatchNorm1d(6)), x2(4, 3))
    add("batchnorm1d_3d", lambda: seq(nn.BatchNorm1d(3)), x2(2, 3, 5))
    add("batchnorm1d_no_affine", lambda: seq(nn.BatchNorm1d(3, affine=False, eps=1e-3)), x2(4, 3))
    add("batchnorm1d_batch_stats", lambda: seq(nn.BatchNorm1d(3, track_running_stats=False)), x2(4, 3))
    add("batchnorm2d", lambda: seq(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4)), x2(2, 2, 6, 6))
    add("layernorm", lambda: seq(nn.LayerNorm(6)), x2(2, 3, 6))
    add("layernorm_2d_no_affine", lambda: seq(nn.LayerNorm([3, 4], elementwise_affine=False)), x2(2, 3, 4))
    add("groupnorm", lambda: seq(nn.GroupNorm(2, 4)), x2(2, 4, 3, 3))
    # convolutions
    add("conv1d", lambda: seq(nn.Conv1d(3, 4, 3, stride=2, padding=1, dilation=2)), x2(2, 3, 11))
    add("conv1d_same", lambda: seq(nn.Conv1d(2, 3, 4, padding="same")), x2(2, 2, 9))
    add("conv2d", lambda: seq(nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2, bias=False)), x2(2, 4, 9, 8))
    add("conv2d_same_even_kernel", lambda: seq(nn.Conv2d(2, 3, 4, padding="same", dilation=2)), x2(1, 2, 9, 9))
    add("conv2d_valid", lambda: seq(nn.Conv2d(2, 3, 3, padding="valid")), x2(2, 2, 5, 5))
    add("conv2d_depthwise", lambda: seq(nn.Conv2d(3, 6, 3, groups=3, padding=1)), x2(2, 3, 5, 5))
    add("conv2d_reflect", lambda: seq(nn.Conv2d(2, 3, 3, padding=2, padding_mode="reflect")), x2(2, 2, 5, 6))
    add("conv2d_replicate", lambda: seq(nn.Conv2d(2, 3, 3, padding=1, padding_mode="replicate")), x2(2, 2, 5, 6))
    add("conv3d", lambda: seq(nn.Conv3d(2, 3, 2, padding=1)), x2(1, 2, 3, 4, 4))
    add("conv_transpose2d", lambda: seq(nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)), x2(2, 3, 4, 5))
    add("conv_transpose2d_groups", lambda: seq(nn.ConvTranspose2d(4, 6, (2, 3), stride=(1, 2), groups=2, dilation=2, bias=False)), x2(2, 4, 3, 3))
    add("conv_transpose1d", lambda: seq(nn.ConvTranspose1d(2, 3, 4, stride=3, padding=1)), x2(2, 2, 5))
    # pooling
    add("maxpool2d", lambda: seq(nn.MaxPool2d(3, stride=2, padding=1)), x2(2, 2, 7, 8))
    add("maxpool2d_ceil", lambda: seq(nn.MaxPool2d(2, stride=2, ceil_mode=True)), x2(2, 2, 7, 5))
    add("maxpool2d_ceil_padded", lambda: seq(nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)), x2(1, 2, 6, 7))
    add("maxpool2d_dilation", lambda: seq(nn.MaxPool2d(2, stride=1, dilation=2)), x2(2, 2, 6, 6))
    add("maxpool1d", lambda: seq(nn.MaxPool1d(2)), x2(2, 3, 9))
    add("avgpool2d", lambda: seq(nn.AvgPool2d(3, stride=2, padding=1)), x2(2, 2, 7, 8))
    add("avgpool2d_exclude_pad", lambda: seq(nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)), x2(2, 2, 7, 8))
    add("avgpool2d_ceil", lambda: seq(nn.AvgPool2d(2, ceil_mode=True)), x2(2, 2, 7, 5))
    add("avgpool2d_divisor", lambda: seq(nn.AvgPool2d(2, divisor_override=3)), x2(2, 2, 6, 6))
    add("avgpool1d", lambda: seq(nn.AvgPool1d(3, stride=2)), x2(2, 3, 9))
    add("adaptive_avgpool2d_global", lambda: seq(nn.AdaptiveAvgPool2d((1, 1))), x2(2, 3, 5, 7))
    add("adaptive_avgpool2d_divisible", lambda: seq(nn.AdaptiveAvgPool2d(2)), x2(2, 3, 6, 4))
    add("adaptive_avgpool2d_uneven", lambda: seq(nn.AdaptiveAvgPool2d((3, 5))), x2(2, 3, 7, 9))
    add("adaptive_avgpool2d_none", lambda: seq(nn.AdaptiveAvgPool2d((None, 2))), x2(2, 3, 5, 6))
    add("adaptive_avgpool1d", lambda: seq(nn.AdaptiveAvgPool1d(4)), x2(2, 3, 10))
    add("adaptive_maxpool2d", lambda: seq(nn.AdaptiveMaxPool2d((2, 3))), x2(2, 3, 4, 6))
    # embedding
    ids = lambda: (torch.tensor([[0, 2, 4, 1], [3, 3, 0, 4]]),)
    add("embedding", lambda: seq(nn.Embedding(5, 3, padding_idx=0)), ids)
    # recurrent
    add("rnn_tanh", lambda: WithState(nn.RNN(4, 6)), lambda: (randn(5, 2, 4), randn(1, 2, 6)),
        dynamic_axes={"x": {1: "batch"}, "h0": {1: "batch"}})
    add("rnn_relu_2layers_batch_first", lambda: seq(nn.RNN(3, 4, num_layers=2, nonlinearity="relu", batch_first=True)), x2(2, 5, 3))
    add("rnn_bidirectional", lambda: WithState(nn.RNN(3, 4, num_layers=2, bidirectional=True, batch_first=True)),
        lambda: (randn(2, 5, 3), randn(4, 2, 4)))
    add("lstm", lambda: seq(nn.LSTM(3, 5)), lambda: (randn(6, 2, 3),), dynamic_axes={"input": {1: "batch"}})
    add("lstm_bidirectional_2layers", lambda: LSTMWithState(nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)),
        lambda: (randn(2, 5, 3), randn(4, 2, 4), randn(4, 2, 4)))
    add("lstm_no_bias", lambda: seq(nn.LSTM(3, 4, bias=False, batch_first=True)), x2(2, 4, 3))
    add("gru", lambda: WithState(nn.GRU(3, 5, batch_first=True)), lambda: (randn(2, 4, 3), randn(1, 2, 5)))
    add("gru_bidirectional_2layers", lambda: seq(nn.GRU(3, 4, num_layers=2, bidirectional=True)), lambda: (randn(5, 2, 3),),
        dynamic_axes={"input": {1: "batch"}})
    # functions and methods
    add("functional", Functional, x2(2, 3, 8, 8))
    add("functional2", Functional2, x2(2, 2, 5, 5))
    add("rnn_outputs_getitem", RNNOutputs, x2(2, 4, 3))
    # the seed tutorial's models
    add("seed_my_model", MyModel, x2(4, 3), example="my_model")
    add("seed_neural_net", lambda: NeuralNet(1, 8, 1), lambda: (torch.tensor([[1.0], [2.0], [3.0], [4.0]]),), example="neural_net")
    add("seed_sequential", lambda: seq(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 1)), x2(4, 1), example="sequential")
    add("seed_sequential_batchnorm_dropout", lambda: seq(nn.Linear(1, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1)),
        x2(4, 1), example="sequential_batchnorm_dropout")
    add("seed_simple_cnn", SimpleCNN, x2(2, 3, 32, 32), example="simple_cnn", weight_dtype=torch.float16)
    add("seed_simple_rnn", lambda: SimpleRNN(1, 10, 1), lambda: (randn(1, 9, 1), randn(1, 1, 10)), example="simple_rnn",
        output_names=["output", "h_n"], dynamic_axes={"x": {0: "batch", 1: "seq"}, "hidden": {1: "batch"}})
    add("seed_lstm_model", lambda: LSTMModel(1, 32, 1), x2(2, 7, 1), example="lstm_model", weight_dtype=torch.bfloat16,
        dynamic_axes={"x": {0: "batch", 1: "seq"}})
    add("seed_char_rnn", CharRNN, lambda: (torch.tensor([[0, 1, 2, 2]]),), example="char_rnn", dynamic_axes={"x": {0: "batch", 1: "seq"}})
    return c


# --- writing -----------------------------------------------------------------------------------

def randomize_norm_stats(model):
    """Non-trivial running statistics so eval-mode BatchNorm is really tested."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.running_mean is not None:
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.5)
                m.running_var.copy_(torch.rand_like(m.running_var) * 1.5 + 0.5)
                m.num_batches_tracked.fill_(7)
            if m.affine:
                m.weight.data.copy_(torch.rand_like(m.weight) + 0.5)
                m.bias.data.copy_(torch.randn_like(m.bias) * 0.2)
        if isinstance(m, (nn.LayerNorm, nn.GroupNorm)) and getattr(m, "weight", None) is not None:
            m.weight.data.copy_(torch.rand_like(m.weight) + 0.5)
            m.bias.data.copy_(torch.randn_like(m.bias) * 0.2)


def flatten_outputs(y):
    if isinstance(y, torch.Tensor):
        return [y]
    out = []
    for v in y:
        out.extend(flatten_outputs(v))
    return out


def strided_state_dict(sd):
    """The same values held by non-contiguous views into shared storages, as a .pth can hold them."""
    out = collections.OrderedDict()
    for k, v in sd.items():
        if v.dim() == 2:
            big = torch.zeros(v.shape[1] + 1, v.shape[0] + 2, dtype=v.dtype)
            big[1:, 1:-1] = v.t()
            out[k] = big[1:, 1:-1].t()
            assert not out[k].is_contiguous() and torch.equal(out[k], v)
        else:
            out[k] = v
    return out


def write_case(name, make_model, make_inputs, opts):
    torch.manual_seed(zlib.crc32(name.encode()))
    model = make_model()
    randomize_norm_stats(model)
    dtype = opts.get("weight_dtype")
    if dtype is not None:
        # Round the weights to half precision so the file can hold them exactly in that dtype.
        model.to(dtype).float()
    model.eval()
    inputs = make_inputs()
    d = os.path.join(OUT, "golden", name)
    shutil.rmtree(d, ignore_errors=True)
    arch_path, _ = torch_export.export(model, inputs, d, dynamic_axes=opts.get("dynamic_axes"), output_names=opts.get("output_names"))
    sd = model.state_dict()
    if dtype is not None:
        sd = collections.OrderedDict((k, v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items())
        torch_export.save_safetensors(sd, os.path.join(d, "weights.safetensors"))
    torch.save(strided_state_dict(sd) if opts.get("strided_pth") else sd, os.path.join(d, "weights.pth"))
    with torch.no_grad():
        outputs = flatten_outputs(model(*inputs))
    import json
    arch = json.load(open(arch_path))
    io_tensors = collections.OrderedDict()
    for spec, x in zip(arch["inputs"], [x for x in inputs if x is not None]):
        io_tensors["input." + spec["name"]] = x
    names = opts.get("output_names") or (["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))])
    for n, y in zip(names, outputs):
        io_tensors["output." + n] = y.contiguous()
    torch_export.save_safetensors(io_tensors, os.path.join(d, "io.safetensors"))
    if opts.get("example"):
        shutil.copy(arch_path, os.path.join(EXAMPLES, opts["example"] + ".json"))
    return name


# --- resnet18 with deterministic weights -------------------------------------------------------

def fnv1a(s):
    h = 0x811C9DC5
    for b in s.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def synthetic_weight(key, shape):
    """Deterministic weights reproduced exactly by test/compiler/synthetic-weights.ts:
    w[i] = sin(0.7 i + phase(key)) scaled per kind of tensor, computed in float64."""
    n = int(np.prod(shape)) if len(shape) else 1
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    phase = fnv1a(key) / 2 ** 32 * 2 * math.pi
    s = np.sin(np.arange(n, dtype=np.float64) * 0.7 + phase)
    if key.endswith("running_var"):
        v = 1 + 0.5 * s * s
    elif key.endswith("weight") and len(shape) >= 2:
        v = s * (2 / math.sqrt(n / shape[0]))
    elif key.endswith("weight"):
        v = 1 + 0.1 * s
    else:
        v = 0.1 * s
    return torch.from_numpy(v.astype(np.float32)).reshape(shape)


def synthetic_input(shape):
    n = int(np.prod(shape))
    return torch.from_numpy(np.sin(np.arange(n, dtype=np.float64) * 0.37 + 0.1).astype(np.float32)).reshape(shape)


def write_resnet18():
    import torchvision
    model = torchvision.models.resnet18()
    sd = model.state_dict()
    model.load_state_dict(collections.OrderedDict((k, synthetic_weight(k, list(v.shape))) for k, v in sd.items()))
    model.eval()
    x = synthetic_input([2, 3, 64, 64])
    d = os.path.join(OUT, "resnet18")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    arch = torch_export.architecture(model, x, name="resnet18")
    import json
    with open(os.path.join(d, "architecture.json"), "w") as f:
        f.write(torch_export.dumps(arch))
    # The documented example takes torchvision's usual 224x224 images; the test uses 64x64 to stay small.
    with open(os.path.join(EXAMPLES, "resnet18.json"), "w") as f:
        f.write(torch_export.dumps(torch_export.architecture(model, torch.zeros(1, 3, 224, 224), name="resnet18")))
    with torch.no_grad():
        y = model(x)
    torch_export.save_safetensors(collections.OrderedDict([("input.x", x), ("output.output", y)]), os.path.join(d, "io.safetensors"))


# --- bad weight files --------------------------------------------------------------------------

class _Reduce:
    """Pickles as REDUCE(fn, args): what a malicious checkpoint does."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


class _FakeStorage:
    def __init__(self, key, numel, kind="FloatStorage"):
        self.key, self.numel, self.kind = key, numel, kind


class _FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()))


class _TorchLikePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _FakeStorage):
            return ("storage", getattr(torch, obj.kind), obj.key, "cpu", obj.numel)
        return None


def _put(z, name, data):
    """A zip entry with a fixed timestamp, so the fixtures are the same bytes on every run."""
    z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)


def _pth(path, root, storages=None, protocol=2):
    """A zip laid out like torch.save's, with our own pickle and storage bytes."""
    buf = io.BytesIO()
    _TorchLikePickler(buf, protocol=protocol).dump(root)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        _put(z, "archive/data.pkl", buf.getvalue())
        for key, data in (storages or {}).items():
            _put(z, f"archive/data/{key}", data)
        _put(z, "archive/version", "3\n")


def write_bad_weights():
    d = os.path.join(OUT, "bad-weights")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    p = lambda n: os.path.join(d, n)
    floats = np.arange(6, dtype=np.float32).tobytes()
    good = collections.OrderedDict([("0.weight", _FakeTensor(_FakeStorage("0", 6), 0, (2, 3), (3, 1)))])
    _pth(p("ok.pth"), good, {"0": floats})
    # Malicious pickles: each would run a command or code under pickle.load.
    _pth(p("os_system.pth"), _Reduce(os.system, ("echo pwned > /tmp/nnserve-pwned",)))
    _pth(p("builtins_eval.pth"), collections.OrderedDict([("0.weight", _Reduce(eval, ("__import__('os').system('echo pwned')",)))]))
    _pth(p("stack_global_protocol4.pth"), _Reduce(os.system, ("echo pwned",)), protocol=4)
    _pth(p("reduce_storage_type.pth"), _Reduce(torch.FloatStorage, (3,)))
    with zipfile.ZipFile(p("inst_opcode.pth"), "w") as z:
        _put(z, "archive/data.pkl", b"(S'echo pwned'\nios\nsystem\n.")
    torch.save(MyModel(), p("whole_module.pth"))  # pickles __main__.MyModel: not a state_dict
    # Corrupt or lying files.
    raw = open(p("ok.pth"), "rb").read()
    open(p("truncated.pth"), "wb").write(raw[: len(raw) // 2])
    _pth(p("storage_too_short.pth"), good, {"0": floats[:8]})
    _pth(p("huge_size.pth"), collections.OrderedDict([("0.weight", _FakeTensor(_FakeStorage("0", 6), 0, (2 ** 20, 2 ** 20), (2 ** 20, 1)))]), {"0": floats})
    _pth(p("out_of_bounds_stride.pth"), collections.OrderedDict([("0.weight", _FakeTensor(_FakeStorage("0", 6), 2, (2, 3), (3, 1)))]), {"0": floats})
    _pth(p("not_a_tensor.pth"), collections.OrderedDict([("0.weight", "hello")]))
    with zipfile.ZipFile(p("garbage_pickle.pth"), "w") as z:
        _put(z, "archive/data.pkl", b"\x80\x02\xff\xfe\xfd")
    torch.save(collections.OrderedDict([("0.weight", torch.ones(2, 3))]), p("legacy.pth"), _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.script(nn.Linear(3, 2)), p("torchscript.pt"))
    torch.save({"epoch": 3, "model_state_dict": collections.OrderedDict([("0.weight", torch.ones(2, 3))])}, p("checkpoint_dict.pth"))
    open(p("not_a_zip.pth"), "wb").write(b"hello world, this is not a checkpoint")

    def st(name, header, data=b""):
        h = header if isinstance(header, bytes) else __import__("json").dumps(header).encode()
        open(p(name), "wb").write(struct.pack("<Q", len(h)) + h + data)

    st("ok.safetensors", {"0.weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}, floats)
    okst = open(p("ok.safetensors"), "rb").read()
    open(p("truncated.safetensors"), "wb").write(okst[:-5])
    open(p("short.safetensors"), "wb").write(okst[:5])
    open(p("huge_header.safetensors"), "wb").write(struct.pack("<Q", 2 ** 60) + b"{}")
    st("bad_json.safetensors", b"{not json")
    st("wrong_dtype.safetensors", {"0.weight": {"dtype": "C64", "shape": [2, 3], "data_offsets": [0, 48]}}, floats * 2)
    st("huge_shape.safetensors", {"0.weight": {"dtype": "F32", "shape": [2 ** 40, 2 ** 20], "data_offsets": [0, 24]}}, floats)
    st("offsets_mismatch.safetensors", {"0.weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}}, floats)
    st("offsets_outside.safetensors", {"0.weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [100, 124]}}, floats)
    st("int_weights.safetensors", {"0.weight": {"dtype": "I64", "shape": [2, 3], "data_offsets": [0, 48]}}, np.arange(6, dtype=np.int64).tobytes())


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(EXAMPLES, exist_ok=True)
    only = set(sys.argv[1:])
    names = []
    for name, make_model, make_inputs, opts in cases():
        if only and name not in only:
            continue
        names.append(write_case(name, make_model, make_inputs, opts))
        print("golden", name)
    if not only or "resnet18" in only:
        write_resnet18()
        print("resnet18")
    if not only or "bad-weights" in only:
        write_bad_weights()
        print("bad-weights")


if __name__ == "__main__":
    with torch.no_grad():
        main()
