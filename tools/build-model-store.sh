#!/usr/bin/env bash
# Archives the bundled models (made by tools/make_models.py) into model-store/ with nnserve's
# own archiver. Run from the repo root after `npm run build`.
set -euo pipefail
store=model-store
mkdir -p "$store"
for dir in tools/models/*/; do
  name=$(basename "$dir")
  extra=()
  [ -f "$dir/index_to_name.json" ] && extra=(--extra-files "$dir/index_to_name.json")
  node dist/src/cli.js archive --model-name "$name" --version 1.0 \
    --serialized-file "$dir/model.onnx" --config-file "$dir/model-config.yaml" \
    "${extra[@]}" --export-path "$store" -f
done
