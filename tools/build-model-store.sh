#!/usr/bin/env bash
# Archives the bundled models (made by tools/make_models.py, tools/make_fashion_cnn.py and
# tools/models/char_rnn/train.py) into model-store/ with nnserve's own archiver. Run from the
# repo root after `npm run build`. Each tools/models/NAME/ holds model.onnx and
# model-config.yaml; optionally `handler` (the handler's name, default tensor) and JSON files
# the handler reads (index_to_name.json, vocab.json), which go in as extra files.
set -euo pipefail
store=model-store
mkdir -p "$store"
for dir in tools/models/*/; do
  dir=${dir%/}
  name=$(basename "$dir")
  handler=tensor
  [ -f "$dir/handler" ] && handler=$(tr -d '[:space:]' < "$dir/handler")
  jsons=$(find "$dir" -maxdepth 1 -name '*.json' | sort | paste -sd, -)
  extra=()
  [ -n "$jsons" ] && extra=(--extra-files "$jsons")
  node dist/src/cli.js archive --model-name "$name" --version 1.0 --handler "$handler" \
    --serialized-file "$dir/model.onnx" --config-file "$dir/model-config.yaml" \
    "${extra[@]}" --export-path "$store" -f
done
