"""The seed tutorial's Flask + TorchScript image API, as the seed wrote it: the baseline of
bench/image-classifier.ts (issue #4: nnserve should beat it by >= 1.7x).

One change: the model path comes from $SEED_MODEL (default: the seed's cwd-relative
"resnet18_traced.pt"; the bench passes bench/.cache/resnet18_traced.pt, written by
bench/make_resnet18.py: the same random-weight ResNet-18 as the bench's ONNX file).
Like the seed: no Normalize, no thread settings (PyTorch's defaults), no batching.
The one line printed to stdout when a worker has loaded the model is for the bench
(it waits for every worker) and does not change what the API does.

Run as the seed did, under gunicorn with 2 workers (Debian's python3, torch 1.13):

    SEED_MODEL=bench/.cache/resnet18_traced.pt \\
        /usr/bin/python3 -m gunicorn -w 2 -b 127.0.0.1:5000 --chdir bench seed_flask:app

    curl -F file=@test/fixtures/images/chelsea.jpg http://127.0.0.1:5000/predict   # {"class": n}
"""

import os

from flask import Flask, request, jsonify
import torch
from torchvision import models, transforms  # noqa: F401  (as the seed imports them)
from PIL import Image

app = Flask(__name__)
model = torch.jit.load(os.environ.get("SEED_MODEL", "resnet18_traced.pt"))
model.eval()
transform = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor()])


@app.route('/predict', methods=['POST'])
def predict():
    file = request.files['file']
    image = Image.open(file)
    img_tensor = transform(image).unsqueeze(0)
    with torch.no_grad():
        preds = model(img_tensor)
    predicted = torch.argmax(preds, 1).item()
    return jsonify({"class": int(predicted)})


print(f"SEED_FLASK_READY pid={os.getpid()} torch_threads={torch.get_num_threads()}", flush=True)
