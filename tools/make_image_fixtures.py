"""Image fixtures and torchvision golden tensors for nnserve's image preprocessing tests.

Run from the repository root with Debian's torch 1.13 / torchvision 0.14 / Pillow:

    /usr/bin/python3 tools/make_image_fixtures.py

Inputs are real photos from scikit-image's data folder (python3-skimage:
/usr/lib/python3/dist-packages/skimage/data; override with SKIMAGE_DATA), read with
Pillow and never fetched from the network. The script is deterministic.

It writes, under test/fixtures/:

  images/{chelsea,coffee,astronaut}.png   the scikit-image PNGs, byte for byte (two carry an
                                          ICC profile, which PIL ignores and so must nnserve)
  images/{chelsea,coffee,astronaut}.jpg   the same photos saved by Pillow as JPEG (quality 90,
                                          ICC profile kept)
  images/alpha.png        RGBA: chelsea with an alpha ramp and a fully transparent band whose
                          colour channels are NOT zero (PIL's convert('RGB') keeps them)
  images/gray.png         8-bit greyscale (mode L) crop of coffee
  images/palette.gif      two-frame animated GIF (mode P); only frame 0 counts
  images/photo.webp       lossy WebP of coffee (quality 80)
  images/exif-rotated.jpg a JPEG whose EXIF Orientation is 6 (PIL + torchvision do NOT rotate)
  images/small.png        a 37 x 23 crop: CenterCrop must pad it with zeros, as torchvision does
  images/truncated.jpg    the first half of chelsea.jpg
  images/bomb.png         a valid 30000 x 30000 1-bit PNG (112 KB on disk, 900 Mpixel decoded)
  images/fashion-1000.pngs  the first 1000 Fashion-MNIST test images as PNGs written by PIL,
                          each preceded by its byte length (uint32 little-endian)

  golden/images/<file>.f32.gz   torchvision's tensor for <file>: float32 little-endian CHW, gzipped
  golden/images/index.json      per file: the transform used (Resize, CenterCrop, mean, std,
                                Grayscale) and the shape
  golden/images/probe.json      the probe model's logits (PyTorch) for each photo's golden tensor

  images/models/identity.onnx  float32 [batch, C, H, W] -> the same tensor (every axis
                               dynamic): what the server feeds a model comes back out
  images/models/probe.onnx     Conv2d(3, 4, 16, stride=16) -> Flatten -> Linear(784, 10),
                               seeded random weights: a cheap ImageNet-shaped classifier

The transform is the one a PyTorch user trains with: torchvision.datasets.folder.pil_loader
(Image.open(...).convert('RGB')), then Resize, CenterCrop, ToTensor, Normalize - the ImageNet
defaults TorchServe's image_classifier uses (256, 224, mean [0.485, 0.456, 0.406],
std [0.229, 0.224, 0.225]) for the three photos, smaller sizes for the edge cases to keep the
fixtures small.
"""

import gzip
import io
import json
import os
import shutil
import struct
import sys
import zlib

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_mnist  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = os.path.join(ROOT, "test", "fixtures", "images")
GOLDEN = os.path.join(ROOT, "test", "fixtures", "golden", "images")
SKIMAGE = os.environ.get("SKIMAGE_DATA", "/usr/lib/python3/dist-packages/skimage/data")

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def pil_loader(path):
    # torchvision.datasets.folder.pil_loader
    with open(path, "rb") as f:
        img = Image.open(f)
        return img.convert("RGB")


def golden(name, resize=256, crop=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, grayscale=None):
    steps = []
    if grayscale:
        steps.append(transforms.Grayscale(num_output_channels=grayscale))
    steps += [transforms.Resize(resize), transforms.CenterCrop(crop), transforms.ToTensor(),
              transforms.Normalize(mean, std)]
    t = transforms.Compose(steps)(pil_loader(os.path.join(IMAGES, name)))
    data = t.numpy().astype("<f4").tobytes()
    with gzip.GzipFile(os.path.join(GOLDEN, name + ".f32.gz"), "wb", mtime=0) as f:
        f.write(data)
    return {"resize": resize, "centerCrop": crop, "mean": mean, "std": std,
            "grayscale": grayscale, "shape": list(t.shape)}


def bomb_png(path, side=30000):
    """A real, decodable 1-bit greyscale PNG of side x side pixels, compressed row by row."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    row = b"\x00" + b"\x00" * ((side + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)))
        f.write(chunk(b"IDAT", idat))
        f.write(chunk(b"IEND", b""))


class Identity(torch.nn.Module):
    def forward(self, x):
        return x.clone()


class Probe(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 16, stride=16)
        self.fc = torch.nn.Linear(4 * 14 * 14, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.conv(x), 1))


def export(model, shape, name, dynamic):
    d = os.path.join(IMAGES, "models")
    os.makedirs(d, exist_ok=True)
    torch.onnx.export(model.eval(), torch.zeros(*shape), os.path.join(d, name + ".onnx"), input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": dynamic, "output": dynamic if name == "identity" else {0: "batch"}},
                      opset_version=17)


def models(index):
    export(Identity(), (1, 3, 8, 8), "identity", {0: "batch", 1: "channels", 2: "height", 3: "width"})
    torch.manual_seed(0)
    probe = Probe().eval()
    export(probe, (1, 3, 224, 224), "probe", {0: "batch"})
    logits = {}
    for key in ["chelsea.jpg", "chelsea.png", "coffee.jpg", "coffee.png", "astronaut.jpg", "astronaut.png"]:
        with gzip.open(os.path.join(GOLDEN, key + ".f32.gz"), "rb") as f:
            x = torch.from_numpy(np.frombuffer(f.read(), "<f4").copy()).reshape(1, *index[key]["shape"])
        with torch.no_grad():
            logits[key] = [float(v) for v in probe(x)[0]]
    with open(os.path.join(GOLDEN, "probe.json"), "w") as f:
        json.dump({"model": "probe", "logits": logits}, f, indent=1)
        f.write("\n")


def main():
    os.makedirs(IMAGES, exist_ok=True)
    os.makedirs(GOLDEN, exist_ok=True)
    index = {}

    for name in ["chelsea", "coffee", "astronaut"]:
        src = os.path.join(SKIMAGE, name + ".png")
        shutil.copyfile(src, os.path.join(IMAGES, name + ".png"))
        im = Image.open(src)
        im.convert("RGB").save(os.path.join(IMAGES, name + ".jpg"), quality=90,
                               icc_profile=im.info.get("icc_profile"))
        for ext in ["png", "jpg"]:
            index[f"{name}.{ext}"] = golden(f"{name}.{ext}")

    chelsea = Image.open(os.path.join(SKIMAGE, "chelsea.png")).convert("RGB")
    coffee = Image.open(os.path.join(SKIMAGE, "coffee.png")).convert("RGB")
    small = dict(resize=64, crop=56)

    # RGBA with a ramp and a transparent band that still holds colour.
    rgba = chelsea.crop((100, 50, 340, 230)).convert("RGBA")
    a = np.array(rgba)
    a[:, :, 3] = np.linspace(0, 255, a.shape[1], dtype=np.float64).astype(np.uint8)[None, :]
    a[60:90, :, 3] = 0
    Image.fromarray(a, "RGBA").save(os.path.join(IMAGES, "alpha.png"))
    index["alpha.png"] = golden("alpha.png", **small)

    coffee.convert("L").crop((150, 80, 450, 300)).save(os.path.join(IMAGES, "gray.png"))
    index["gray.png"] = golden("gray.png", **small)

    f0 = chelsea.crop((0, 0, 200, 150)).quantize(64)
    f1 = chelsea.crop((200, 100, 400, 250)).quantize(64)
    f0.save(os.path.join(IMAGES, "palette.gif"), save_all=True, append_images=[f1], duration=100, loop=0)
    index["palette.gif"] = golden("palette.gif", **small)

    coffee.crop((100, 50, 420, 290)).save(os.path.join(IMAGES, "photo.webp"), quality=80)
    index["photo.webp"] = golden("photo.webp", **small)

    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    chelsea.crop((0, 0, 240, 160)).save(os.path.join(IMAGES, "exif-rotated.jpg"), quality=90, exif=exif.tobytes())
    index["exif-rotated.jpg"] = golden("exif-rotated.jpg", **small)

    chelsea.crop((200, 100, 237, 123)).save(os.path.join(IMAGES, "small.png"))
    index["small.png"] = golden("small.png", resize=[23, 37], crop=48)

    # Grayscale(1) as the Fashion-MNIST model is fed a colour photo.
    index["coffee.jpg#gray1"] = golden("coffee.jpg", resize=[28, 28], crop=28, mean=[0.2860], std=[0.3530], grayscale=1)
    os.replace(os.path.join(GOLDEN, "coffee.jpg.f32.gz"), os.path.join(GOLDEN, "coffee.jpg#gray1.f32.gz"))
    index["coffee.jpg"] = golden("coffee.jpg")

    with open(os.path.join(IMAGES, "chelsea.jpg"), "rb") as f:
        jpg = f.read()
    with open(os.path.join(IMAGES, "truncated.jpg"), "wb") as f:
        f.write(jpg[: len(jpg) // 2])
    bomb_png(os.path.join(IMAGES, "bomb.png"))

    images, _ = fashion_mnist.load("test", 1000)
    with open(os.path.join(IMAGES, "fashion-1000.pngs"), "wb") as f:
        for img in images:
            buf = io.BytesIO()
            Image.fromarray(img, "L").save(buf, format="PNG")
            f.write(struct.pack("<I", buf.tell()) + buf.getvalue())

    models(index)
    with open(os.path.join(GOLDEN, "index.json"), "w") as f:
        json.dump(index, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(r, x)) for d in [IMAGES, GOLDEN] for r, _, xs in os.walk(d) for x in xs)
    print(f"wrote {len(index)} golden tensors; fixtures total {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
