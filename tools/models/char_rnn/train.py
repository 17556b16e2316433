"""Train the bundled char_rnn: the seed tutorial's character-level Embedding -> RNN -> Linear
(8.11), here identifying a sentence's language (English, French, German, Spanish).

Run from the repository root with Debian's torch 1.13:

    /usr/bin/python3 tools/models/char_rnn/train.py

Text: tools/models/char_rnn/corpus.txt (written for nnserve). The last 4 sentences of each
language are held out. Deterministic: fixed seed, one thread.

Tokens are characters of the lower-cased text, looked up in vocab.json ({"<pad>": 0,
"<unk>": 1, char: id, ...}); a text is left-padded with <pad> to MAX_LEN, so the RNN's last
step always sees the text's last character and requests of any length batch together.
nnserve's text_classifier does the same from the archive's vocab.json and model-config.yaml.

Writes, beside this file: model.onnx (opset 17, input "input" int64 [batch, 64], output
"output" [batch, 4] logits), vocab.json, index_to_name.json, model-config.yaml, handler;
and test/fixtures/golden/images/char_rnn.json: PyTorch's softmax for the held-out sentences.
"""

import json
import os
import random

import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
GOLDEN = os.path.join(ROOT, "test", "fixtures", "golden", "images", "char_rnn.json")
MAX_LEN, EMBED, HIDDEN, SEED, STEPS = 64, 16, 64, 0, 3000

torch.set_num_threads(1)
torch.manual_seed(SEED)
random.seed(SEED)


class CharRNN(nn.Module):
    def __init__(self, vocab, classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab, EMBED, padding_idx=0)
        self.rnn = nn.RNN(EMBED, HIDDEN, batch_first=True)
        self.fc = nn.Linear(HIDDEN, classes)

    def forward(self, x):
        out, _ = self.rnn(self.embedding(x))
        return self.fc(out[:, -1, :])


def encode(text, vocab):
    ids = [vocab.get(c, 1) for c in text.lower()][-MAX_LEN:]
    return [0] * (MAX_LEN - len(ids)) + ids


def main():
    rows = []
    with open(os.path.join(HERE, "corpus.txt"), encoding="utf-8") as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                lang, text = line.rstrip("\n").split("\t")
                rows.append((lang, text))
    classes = sorted({lang for lang, _ in rows})
    train, held = [], []
    for c in classes:
        mine = [t for lang, t in rows if lang == c]
        train += [(c, t) for t in mine[:-4]]
        held += [(c, t) for t in mine[-4:]]
    chars = sorted({ch for _, t in train for ch in t.lower()})
    vocab = {"<pad>": 0, "<unk>": 1, **{ch: i + 2 for i, ch in enumerate(chars)}}

    def sample():
        c, t = random.choice(train)
        n = random.randint(min(12, len(t)), len(t))
        start = random.randint(0, len(t) - n)
        return encode(t[start:start + n], vocab), classes.index(c)

    model = CharRNN(len(vocab), len(classes))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(STEPS):
        batch = [sample() for _ in range(32)]
        x = torch.tensor([b[0] for b in batch])
        y = torch.tensor([b[1] for b in batch])
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % 500 == 0:
            print(f"step {step + 1}: loss {loss.item():.4f}")
    model.eval()

    x = torch.tensor([encode(t, vocab) for _, t in held])
    with torch.no_grad():
        probs = torch.softmax(model(x), 1)
    acc = sum(int(p.argmax()) == classes.index(c) for p, (c, _) in zip(probs, held)) / len(held)
    print(f"held-out accuracy {acc:.3f} on {len(held)} sentences")

    path = os.path.join(HERE, "model.onnx")
    torch.onnx.export(model, x[:1], path, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=17)
    onnx.checker.check_model(onnx.load(path))
    with open(os.path.join(HERE, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, indent=0)
        f.write("\n")
    with open(os.path.join(HERE, "index_to_name.json"), "w") as f:
        json.dump({str(i): c for i, c in enumerate(classes)}, f, indent=2)
        f.write("\n")
    with open(os.path.join(HERE, "handler"), "w") as f:
        f.write("text_classifier\n")
    with open(os.path.join(HERE, "model-config.yaml"), "w") as f:
        f.write("minWorkers: 1\nmaxWorkers: 1\nbatchSize: 16\nmaxBatchDelay: 5\n"
                f"text:\n  vocab: vocab.json\n  level: char\n  lowercase: true\n  maxLength: {MAX_LEN}\n"
                "  padding: left\n")
    with open(GOLDEN, "w", encoding="utf-8") as f:
        json.dump({"model": "char_rnn", "classes": classes, "heldout_accuracy": acc,
                   "cases": [{"text": t, "language": c, "softmax": [float(v) for v in p]}
                             for p, (c, t) in zip(probs, held)]}, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
