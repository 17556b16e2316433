#!/usr/bin/python3
"""Makes the training compiler's gradient fixtures with PyTorch (Debian's torch 1.13 works).

    /usr/bin/python3 tools/make_grad_fixtures.py [case ...]

Writes test/fixtures/grad/<case>/:
  architecture.json   written by tools/torch_export.py, as for the forward fixtures
  weights.safetensors model.state_dict() before the step
  case.json           the training-graph options: {"loss": {...}, "train": bool, "frozen": [...], "output": name}
  io.safetensors      "input.<name>" data inputs, "target", and "mask.<module>" for each Dropout in
                      train mode: the mask torch drew (0 or 1/(1-p), per channel for Dropout2d)
  grads.safetensors   "loss", "grad.<param>" for every parameter torch gave a gradient,
                      "update.<buffer>" (BatchNorm running stats after the train-mode forward),
                      "output.<name>" the model outputs of that forward

The loss is computed by the torch.nn loss class the spec names, with the spec's options.
"""
import collections
import json
import os
import shutil
import sys
import warnings
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import torch_export  # noqa: E402
from make_compiler_fixtures import (  # noqa: E402
    CharRNN, Functional, Functional2, LSTMModel, LSTMWithState, RNNOutputs, WithState, flatten_outputs, randomize_norm_stats,
)

OUT = os.path.join(ROOT, "test", "fixtures", "grad")


# --- models ------------------------------------------------------------------------------------

class Functional3(nn.Module):
    """The elementwise functions, operators and shape methods a forward() calls, on one path to the loss."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        h = self.fc(x)
        a = torch.sigmoid(h) * torch.tanh(h) - F.elu(h, 0.5) / 2
        b = torch.exp(-torch.abs(h)) + torch.sqrt(h * h + 1.0) + torch.log(1.5 + torch.sigmoid(h)) / (1 + h * h)
        c = torch.pow(h, 2) * 0.1 + F.leaky_relu(h, 0.1) + F.silu(h) + F.gelu(h) - torch.neg(h)
        d = a + b - c
        e = d[:, 1:, ::2]
        f = torch.bmm(d.transpose(1, 2), d)
        g = f.sum(-1) / 8 + d[:, -1] - d.mean(1)
        s = torch.stack([g, -g], dim=1)
        u = s.unsqueeze(0).squeeze(0).flatten(1)
        v = torch.cat([u[:, :8], e.reshape(e.size(0), -1)[:, :8]], dim=1)
        w = v.permute(1, 0).t()
        return F.log_softmax(self.fc2(g + w[:, :8] * w[:, 8:]), dim=1)


class RecurrentHead(nn.Module):
    """An RNN whose output sequence and final state both reach the loss."""

    def __init__(self, rnn, features):
        super().__init__()
        self.rnn = rnn
        self.fc = nn.Linear(features, 2)

    def forward(self, x):
        out, h = self.rnn(x)
        last = out[:, -1] if self.rnn.batch_first else out[-1]
        return self.fc(last * h[-1].sum(-1, keepdim=True) + last)


class LSTMHead(RecurrentHead):
    """RecurrentHead for an LSTM: h_n and c_n both reach the loss."""

    def forward(self, x):
        out, (h, c) = self.rnn(x)
        last = out[:, -1] if self.rnn.batch_first else out[-1]
        return self.fc(last * (h[-1] + c[-1]).sum(-1, keepdim=True) + last)


class RecurrentState(nn.Module):
    """An RNN called with its initial state; the loss reads the output and h_n."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x, h0):
        out, h = self.rnn(x, h0)
        return out.sum(-1) + h.sum(0).sum(-1, keepdim=True)


class ReluPoolShared(nn.Module):
    """A ReLU output read by a MaxPool and by another path: the pooled ReLU-mask shortcut must
    not be taken for the sum of both gradients."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 3 * 3, 2)

    def forward(self, x):
        r = F.relu(self.conv(x))
        pooled = F.max_pool2d(r, 2)
        return self.fc(torch.flatten(pooled, 1)) + r.mean((1, 2, 3)).unsqueeze(1)


class CharRNNLogits(CharRNN):
    """The seed's char-level model with the logits as [batch, vocab, seq] for CrossEntropyLoss."""

    def forward(self, x):
        return super().forward(x).permute(0, 2, 1)


class FashionCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


# --- cases -------------------------------------------------------------------------------------

def randn(*shape, scale=1.0):
    return torch.randn(*shape) * scale


def seq(*layers):
    return nn.Sequential(*layers)


def classes(n, c, *rest):
    return lambda: torch.randint(0, c, (n, *rest))


def like(scale=1.0):
    """A float target shaped like the output."""
    return lambda out: torch.randn(out.shape) * scale


def flat_image(*shape):
    """Images that are mostly one constant background with a few random strokes."""
    def make():
        x = torch.zeros(*shape)
        x[..., 2:5, 3:7] = torch.rand(*shape[:-2], 3, 4)
        x[..., 6, :] = 0.5
        return (x,)
    return make


def cases():
    """(name, model factory, inputs factory, loss spec, target factory, options)."""
    c = []

    def add(name, model, inputs, loss, target, **opts):
        c.append((name, model, inputs, loss, target, opts))

    x = lambda *s: (lambda: (randn(*s, scale=1.5),))
    mse = {"type": "MSELoss"}
    ce = {"type": "CrossEntropyLoss"}
    mlp = lambda act: seq(nn.Linear(4, 6), act, nn.Linear(6, 3))
    # dense layers and the loop's first case
    add("linear_relu_ce", lambda: mlp(nn.ReLU()), x(5, 4), ce, classes(5, 3))
    add("linear_3d_no_bias", lambda: seq(nn.Linear(5, 4, bias=False), nn.Tanh(), nn.Linear(4, 2)), x(2, 3, 5), mse, None)
    add("frozen_first_layer", lambda: mlp(nn.ReLU()), x(5, 4), ce, classes(5, 3), frozen=["0.*"])
    add("identity_flatten_unflatten", lambda: seq(nn.Identity(), nn.Flatten(), nn.Unflatten(1, (2, 6)), nn.Linear(6, 3), nn.Flatten(1, 2)),
        x(3, 3, 4), mse, None)
    # activations
    for name, act in [
        ("relu", nn.ReLU()), ("leaky_relu", nn.LeakyReLU(0.2)), ("sigmoid", nn.Sigmoid()), ("tanh", nn.Tanh()),
        ("gelu", nn.GELU()), ("gelu_tanh", nn.GELU(approximate="tanh")), ("elu", nn.ELU(0.5)), ("silu", nn.SiLU()),
        ("softmax", nn.Softmax(dim=1)), ("log_softmax", nn.LogSoftmax(dim=-1)), ("relu6", nn.ReLU6()),
        ("hardtanh", nn.Hardtanh(-0.5, 1.5)), ("softplus", nn.Softplus(beta=2, threshold=1)), ("hardswish", nn.Hardswish()),
        ("hardsigmoid", nn.Hardsigmoid()), ("mish", nn.Mish()), ("softsign", nn.Softsign()), ("prelu", nn.PReLU()),
        ("prelu_channels", nn.PReLU(6)),
    ]:
        add(f"act_{name}", (lambda a: lambda: seq(nn.Linear(4, 6), a, nn.Linear(6, 3)))(act), x(6, 4), mse, None)
    # dropout in train mode with torch's masks
    add("dropout_train", lambda: seq(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3)), x(6, 4), ce, classes(6, 3))
    add("dropout2d_train", lambda: seq(nn.Conv2d(2, 4, 3), nn.Dropout2d(0.3), nn.Flatten(), nn.Linear(36, 2)), x(3, 2, 5, 5), mse, None)
    add("dropout_eval", lambda: seq(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 3)), x(6, 4), mse, None, train=False)
    # normalization
    add("batchnorm1d_train", lambda: seq(nn.Linear(3, 6, bias=False), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)), x(8, 3), mse, None)
    add("batchnorm1d_3d_momentum_none", lambda: seq(nn.BatchNorm1d(3, momentum=None), nn.Flatten(), nn.Linear(15, 2)), x(4, 3, 5), mse, None)
    add("batchnorm1d_no_affine", lambda: seq(nn.Linear(3, 4, bias=False), nn.BatchNorm1d(4, affine=False, eps=1e-3, momentum=0.3), nn.Linear(4, 2)), x(6, 3), mse, None)
    add("batchnorm1d_batch_stats", lambda: seq(nn.Linear(3, 4, bias=False), nn.BatchNorm1d(4, track_running_stats=False), nn.Linear(4, 2)), x(6, 3), mse, None)
    add("batchnorm2d_train", lambda: seq(nn.Conv2d(2, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3)), x(3, 2, 6, 6), ce, classes(3, 3))
    add("batchnorm2d_eval", lambda: seq(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3)), x(3, 2, 6, 6), ce, classes(3, 3), train=False)
    add("layernorm", lambda: seq(nn.Linear(6, 6), nn.LayerNorm(6), nn.Linear(6, 2)), x(2, 3, 6), mse, None)
    add("layernorm_2d_no_affine", lambda: seq(nn.LayerNorm([3, 4], elementwise_affine=False), nn.Flatten(), nn.Linear(12, 2)), x(3, 3, 4), mse, None)
    add("groupnorm", lambda: seq(nn.Conv2d(2, 4, 1), nn.GroupNorm(2, 4), nn.Flatten(), nn.Linear(36, 2)), x(2, 2, 3, 3), mse, None)
    # convolutions
    add("conv1d", lambda: seq(nn.Conv1d(3, 4, 3, stride=2, padding=1, dilation=2), nn.Flatten(), nn.Linear(20, 2)), x(2, 3, 11), mse, None)
    add("conv1d_same", lambda: seq(nn.Conv1d(2, 3, 4, padding="same"), nn.Flatten(), nn.Linear(27, 2)), x(2, 2, 9), mse, None)
    add("conv2d", lambda: seq(nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2), nn.Flatten(), nn.Linear(6 * 5 * 10, 2)),
        x(2, 4, 9, 8), mse, None)
    add("conv2d_stride2_pad1", lambda: seq(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.Conv2d(3, 4, 3, stride=2), nn.Flatten(), nn.Linear(16, 2)),
        x(2, 2, 10, 11), mse, None)
    add("conv2d_depthwise", lambda: seq(nn.Conv2d(3, 6, 3, groups=3, padding=1), nn.Conv2d(6, 6, 3, groups=3, bias=False), nn.Flatten(), nn.Linear(54, 2)),
        x(2, 3, 5, 5), mse, None)
    add("conv3d", lambda: seq(nn.Conv3d(2, 3, 2, padding=1), nn.Flatten(), nn.Linear(3 * 4 * 5 * 5, 2)), x(1, 2, 3, 4, 4), mse, None)
    add("conv_transpose2d", lambda: seq(nn.Conv2d(2, 3, 1), nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1), nn.Flatten(), nn.Linear(4 * 8 * 10, 2)),
        x(2, 2, 4, 5), mse, None)
    add("conv_transpose2d_groups", lambda: seq(nn.Conv2d(4, 4, 1), nn.ConvTranspose2d(4, 6, (2, 3), stride=(1, 2), groups=2, dilation=2, bias=False), nn.Flatten(), nn.Linear(6 * 5 * 9, 2)),
        x(2, 4, 3, 3), mse, None)
    add("conv_transpose1d", lambda: seq(nn.Conv1d(2, 2, 1), nn.ConvTranspose1d(2, 3, 4, stride=3, padding=1)), x(2, 2, 5), mse, None)
    # pooling
    pooled = lambda pool, feat: (lambda: seq(nn.Conv2d(2, 3, 1), pool, nn.Flatten(), nn.Linear(feat, 2)))
    add("maxpool2d", pooled(nn.MaxPool2d(2), 3 * 3 * 4), x(2, 2, 7, 8), mse, None)
    add("maxpool2d_overlapping", pooled(nn.MaxPool2d(3, stride=2, padding=1), 3 * 4 * 4), x(2, 2, 7, 8), mse, None)
    add("maxpool2d_ceil", pooled(nn.MaxPool2d(2, stride=2, ceil_mode=True), 3 * 4 * 3), x(2, 2, 7, 5), mse, None)
    add("maxpool2d_dilation", pooled(nn.MaxPool2d(2, stride=1, dilation=2), 3 * 4 * 4), x(2, 2, 6, 6), mse, None)
    add("relu_maxpool_shared", ReluPoolShared, x(2, 2, 6, 7), mse, None)
    # images with constant regions: conv outputs tie inside pooling windows, PyTorch picks the first maximum
    add("maxpool2d_ties_after_relu", lambda: seq(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 5, 3)),
        flat_image(3, 1, 9, 10), ce, classes(3, 3))
    add("maxpool2d_ties", lambda: seq(nn.Conv2d(1, 3, 3, padding=1), nn.MaxPool2d(3), nn.Flatten(), nn.Linear(3 * 3 * 3, 2)),
        flat_image(3, 1, 9, 10), mse, None)
    add("adaptive_maxpool2d_global_ties", lambda: seq(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(3, 2)),
        lambda: (torch.cat([torch.zeros(2, 1, 6, 6), torch.rand(1, 1, 6, 6)]),), mse, None)
    add("maxpool2d_ties_overlapping", lambda: seq(nn.Conv2d(1, 3, 3, padding=1), nn.MaxPool2d(3, stride=2, padding=1), nn.Flatten(), nn.Linear(3 * 5 * 5, 2)),
        flat_image(3, 1, 9, 10), mse, None)
    add("maxpool1d", lambda: seq(nn.Conv1d(3, 3, 1), nn.MaxPool1d(2), nn.Flatten(), nn.Linear(12, 2)), x(2, 3, 9), mse, None)
    add("avgpool2d", pooled(nn.AvgPool2d(3, stride=2, padding=1), 3 * 4 * 4), x(2, 2, 7, 8), mse, None)
    add("avgpool2d_exclude_pad", pooled(nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), 3 * 4 * 4), x(2, 2, 7, 8), mse, None)
    add("avgpool2d_ceil", pooled(nn.AvgPool2d(2, ceil_mode=True), 3 * 4 * 3), x(2, 2, 7, 5), mse, None)
    add("avgpool2d_divisor", pooled(nn.AvgPool2d(2, divisor_override=3), 3 * 3 * 3), x(2, 2, 6, 6), mse, None)
    add("avgpool1d", lambda: seq(nn.Conv1d(3, 3, 1), nn.AvgPool1d(3, stride=2), nn.Flatten(), nn.Linear(12, 2)), x(2, 3, 9), mse, None)
    add("adaptive_avgpool2d_global", pooled(nn.AdaptiveAvgPool2d((1, 1)), 3), x(2, 2, 5, 7), mse, None)
    add("adaptive_avgpool2d_divisible", pooled(nn.AdaptiveAvgPool2d(2), 12), x(2, 2, 6, 4), mse, None)
    add("adaptive_avgpool2d_uneven", pooled(nn.AdaptiveAvgPool2d((3, 5)), 45), x(2, 2, 7, 9), mse, None)
    add("adaptive_maxpool2d", pooled(nn.AdaptiveMaxPool2d((2, 3)), 18), x(2, 2, 4, 6), mse, None)
    add("adaptive_maxpool2d_global", pooled(nn.AdaptiveMaxPool2d(1), 3), x(2, 2, 4, 6), mse, None)
    # embedding
    ids = lambda: (torch.tensor([[0, 2, 4, 1], [3, 3, 0, 4], [2, 2, 2, 0]]),)
    add("embedding_padding_idx", lambda: seq(nn.Embedding(5, 3, padding_idx=0), nn.Flatten(), nn.Linear(12, 2)), ids, mse, None)
    # recurrent
    add("rnn_tanh", lambda: RecurrentHead(nn.RNN(4, 6), 6), x(5, 3, 4), mse, None, dynamic_axes={"x": {1: "batch"}})
    add("rnn_relu_2layers_batch_first_state", lambda: RecurrentState(nn.RNN(3, 4, num_layers=2, nonlinearity="relu", batch_first=True)),
        lambda: (randn(2, 5, 3), randn(2, 2, 4)), mse, None)
    add("rnn_bidirectional", lambda: RecurrentHead(nn.RNN(3, 4, num_layers=2, bidirectional=True, batch_first=True), 8), x(2, 5, 3), mse, None)
    add("lstm", lambda: LSTMHead(nn.LSTM(3, 5), 5), x(6, 2, 3), mse, None, dynamic_axes={"x": {1: "batch"}})
    add("lstm_bidirectional_2layers_state", lambda: LSTMWithState(nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)),
        lambda: (randn(2, 5, 3), randn(4, 2, 4), randn(4, 2, 4)), mse, None)
    add("lstm_no_bias", lambda: LSTMHead(nn.LSTM(3, 4, bias=False, batch_first=True), 4), x(2, 4, 3), mse, None)
    add("gru", lambda: WithState(nn.GRU(3, 5, batch_first=True)), lambda: (randn(2, 4, 3), randn(1, 2, 5)), mse, None)
    add("gru_bidirectional_2layers", lambda: RecurrentHead(nn.GRU(3, 4, num_layers=2, bidirectional=True), 8), x(5, 2, 3), mse, None,
        dynamic_axes={"x": {1: "batch"}})
    add("rnn_outputs_getitem", RNNOutputs, x(2, 4, 3), mse, None)
    add("seed_lstm_model", lambda: LSTMModel(1, 32, 1), x(3, 7, 1), mse, None, dynamic_axes={"x": {0: "batch", 1: "seq"}})
    add("seed_char_rnn", CharRNNLogits, lambda: (torch.randint(0, 5, (3, 6)),), ce, classes(3, 5, 6))
    # functions and methods
    add("functional", Functional, lambda: (randn(2, 3, 8, 8, scale=0.5),), mse, None)
    add("functional2", Functional2, x(2, 2, 5, 5), mse, None)
    add("functional3", Functional3, x(3, 4, 6), {"type": "NLLLoss"}, classes(3, 3))
    # losses
    sig = lambda: seq(nn.Linear(4, 3), nn.Sigmoid())
    lin = lambda: seq(nn.Linear(4, 3))
    logsm = lambda: seq(nn.Linear(4, 5), nn.LogSoftmax(dim=1))
    add("loss_mse_sum", lin, x(6, 4), {"type": "MSELoss", "reduction": "sum"}, None)
    add("loss_l1", lin, x(6, 4), {"type": "L1Loss"}, None)
    add("loss_l1_sum", lin, x(6, 4), {"type": "L1Loss", "reduction": "sum"}, None)
    add("loss_bce", sig, x(6, 4), {"type": "BCELoss"}, lambda out: torch.rand(out.shape))
    add("loss_bce_sum", sig, x(6, 4), {"type": "BCELoss", "reduction": "sum"}, lambda out: (torch.rand(out.shape) > 0.5).float())
    add("loss_bce_logits", lin, x(6, 4), {"type": "BCEWithLogitsLoss"}, lambda out: torch.rand(out.shape))
    add("loss_bce_logits_pos_weight", lin, x(6, 4), {"type": "BCEWithLogitsLoss", "reduction": "sum", "pos_weight": [0.5, 2.0, 3.0]},
        lambda out: (torch.rand(out.shape) > 0.5).float())
    add("loss_ce_weight", lambda: seq(nn.Linear(4, 5)), x(7, 4), {"type": "CrossEntropyLoss", "weight": [1.0, 2.0, 0.5, 1.5, 0.2]}, classes(7, 5))
    add("loss_ce_ignore_index", lambda: seq(nn.Linear(4, 5)), x(7, 4), {"type": "CrossEntropyLoss"},
        lambda: torch.tensor([0, -100, 4, 2, -100, 1, 3]))
    add("loss_ce_ignore_in_range", lambda: seq(nn.Linear(4, 5)), x(7, 4), {"type": "CrossEntropyLoss", "ignore_index": 1, "weight": [1.0, 2.0, 0.5, 1.5, 0.2]},
        lambda: torch.tensor([0, 1, 4, 2, 1, 1, 3]))
    add("loss_ce_label_smoothing", lambda: seq(nn.Linear(4, 5)), x(7, 4),
        {"type": "CrossEntropyLoss", "label_smoothing": 0.2, "ignore_index": 2, "weight": [1.0, 2.0, 0.5, 1.5, 0.2]}, lambda: torch.tensor([0, 1, 4, 2, 2, 1, 3]))
    add("loss_ce_label_smoothing_plain", lambda: seq(nn.Linear(4, 5)), x(7, 4), {"type": "CrossEntropyLoss", "label_smoothing": 0.1}, classes(7, 5))
    add("loss_ce_sum", lambda: seq(nn.Linear(4, 5)), x(7, 4), {"type": "CrossEntropyLoss", "reduction": "sum"}, classes(7, 5))
    add("loss_ce_spatial", lambda: seq(nn.Conv1d(2, 4, 3, padding=1)), x(3, 2, 6), {"type": "CrossEntropyLoss"}, classes(3, 4, 6))
    add("loss_nll_weight", logsm, x(7, 4), {"type": "NLLLoss", "weight": [1.0, 2.0, 0.5, 1.5, 0.2]}, classes(7, 5))
    add("loss_nll_ignore_sum", logsm, x(7, 4), {"type": "NLLLoss", "reduction": "sum", "ignore_index": 0}, classes(7, 5))
    kl_target = lambda out: torch.softmax(torch.randn(out.shape) * 2, dim=1) * (torch.rand(out.shape) > 0.2).float()
    add("loss_kldiv_batchmean", logsm, x(6, 4), {"type": "KLDivLoss", "reduction": "batchmean"}, kl_target)
    add("loss_kldiv_mean", logsm, x(6, 4), {"type": "KLDivLoss"}, kl_target)
    add("loss_kldiv_log_target_sum", logsm, x(6, 4), {"type": "KLDivLoss", "reduction": "sum", "log_target": True},
        lambda out: torch.log_softmax(torch.randn(out.shape), dim=1))
    # the benchmark's model, on a small batch
    add("fashion_cnn", FashionCNN, x(4, 1, 28, 28), ce, classes(4, 10))
    return c


# --- writing -----------------------------------------------------------------------------------

def torch_loss(spec):
    kw = {k: v for k, v in spec.items() if k != "type"}
    for k in ("weight", "pos_weight"):
        if k in kw:
            kw[k] = torch.tensor(kw[k], dtype=torch.float32)
    return getattr(nn, spec["type"])(**kw)


def draw_masks(model, masks, replay=False):
    """Replaces each Dropout's forward in train mode by x * mask with the mask torch's own dropout
    kernel draws (F.dropout of ones: exactly 0 or 1/(1-p)); records the masks (or replays them)."""
    for name, m in model.named_modules():
        if isinstance(m, (nn.Dropout, nn.Dropout2d)) and m.p > 0:
            def forward(x, m=m, name=name):
                if replay:
                    return x * masks["mask." + name].to(x.dtype)
                if isinstance(m, nn.Dropout2d):
                    mask = F.dropout2d(torch.ones(x.shape[0], x.shape[1], *[1] * (x.dim() - 2)), m.p, True)
                else:
                    mask = F.dropout(torch.ones_like(x), m.p, True)
                masks["mask." + name] = mask
                return x * mask
            m.forward = forward


def check_conditioning(name, model, before, inputs, loss, target, masks, train, frozen):
    """Warns when float32 PyTorch itself is more than 1e-5 (relative) away from float64 PyTorch on
    a gradient: such a case compares rounding noise, not gradients; make it better conditioned."""
    import copy
    m64 = copy.deepcopy(model).double()
    m64.load_state_dict(before)
    for k, p in m64.named_parameters():
        p.grad = None
    if train:
        draw_masks(m64, masks, replay=True)
    x64 = [t.double() if t is not None and t.is_floating_point() else t for t in inputs]
    y = flatten_outputs(m64(*x64))[0]
    spec = dict(loss)
    l64 = torch_loss(spec)
    for k in ("weight", "pos_weight"):
        if hasattr(l64, k) and getattr(l64, k) is not None:
            setattr(l64, k, getattr(l64, k).double())
    l64(y, target.double() if target.is_floating_point() else target).backward()
    grads32 = dict(model.named_parameters())
    for k, p in m64.named_parameters():
        g32 = grads32[k].grad
        if p.grad is None or g32 is None:
            continue
        err = ((g32.double() - p.grad).abs().max() / p.grad.abs().max().clamp_min(1e-30)).item()
        if err > 1e-5:
            print(f"  warning: {name}: grad.{k}: float32 torch is {err:.1e} from float64 torch (ill-conditioned)")


def write_case(name, make_model, make_inputs, loss, make_target, opts):
    torch.manual_seed(zlib.crc32(name.encode()))
    model = make_model()
    randomize_norm_stats(model)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.momentum is None and m.num_batches_tracked is not None:
            m.num_batches_tracked.fill_(3)
    train = opts.get("train", True)
    inputs = make_inputs()
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    before = collections.OrderedDict((k, v.clone()) for k, v in model.state_dict().items())
    arch_path, _ = torch_export.export(model, inputs, d, dynamic_axes=opts.get("dynamic_axes"))
    model.load_state_dict(before)
    arch = json.load(open(arch_path))
    frozen = opts.get("frozen", [])
    import fnmatch
    for k, p in model.named_parameters():
        if any(fnmatch.fnmatchcase(k, pat) for pat in frozen):
            p.requires_grad_(False)
    model.train(train)
    masks = collections.OrderedDict()
    if train:
        draw_masks(model, masks)
    outputs = flatten_outputs(model(*inputs))
    prediction = outputs[0]
    target = make_target(prediction.detach()) if make_target and make_target.__code__.co_argcount == 1 else (make_target() if make_target else torch.randn(prediction.shape))
    value = torch_loss(loss)(prediction, target)
    value.backward()
    check_conditioning(name, model, before, inputs, loss, target, masks, train, frozen)

    io = collections.OrderedDict()
    for spec, t in zip(arch["inputs"], [t for t in inputs if t is not None]):
        io["input." + spec["name"]] = t
    io["target"] = target
    io.update(masks)
    torch_export.save_safetensors(io, os.path.join(d, "io.safetensors"))
    grads = collections.OrderedDict([("loss", value.detach().reshape([]))])
    for k, p in model.named_parameters():
        if p.grad is not None:
            grads["grad." + k] = p.grad
    if train:
        for k, b in model.named_buffers():
            if not torch.equal(b, before[k]):
                grads["update." + k] = b
    out_names = ["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))]
    for n, y in zip(out_names, outputs):
        grads["output." + n] = y.detach().contiguous()
    torch_export.save_safetensors(grads, os.path.join(d, "grads.safetensors"))
    case = {"loss": loss, "train": train}
    if frozen:
        case["frozen"] = frozen
    with open(os.path.join(d, "case.json"), "w") as f:
        f.write(json.dumps(case) + "\n")
    return name


def main():
    warnings.filterwarnings("ignore", message="reduction: 'mean' divides the total loss")
    os.makedirs(OUT, exist_ok=True)
    only = set(sys.argv[1:])
    for name, make_model, make_inputs, loss, make_target, opts in cases():
        if only and name not in only:
            continue
        write_case(name, make_model, make_inputs, loss, make_target, opts)
        print("grad", name)


if __name__ == "__main__":
    main()
