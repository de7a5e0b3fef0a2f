#!/bin/sh
# fetch-ort.sh CACHE_DIR — puts ONNX Runtime's shared library in CACHE_DIR
# and prints its path. The library comes from the npm package
# onnxruntime-node (npm pack only: no install scripts run). A second call
# with the same CACHE_DIR reuses the cached copy.
set -eu
VERSION="${ORT_NODE_VERSION:-1.30.0}"
[ $# -eq 1 ] || { echo "usage: $0 CACHE_DIR" >&2; exit 2; }
dir="$1/onnxruntime-node-$VERSION"
lib="$dir/libonnxruntime.so"
if [ -e "$lib" ]; then
	echo "$lib"
	exit 0
fi
mkdir -p "$dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent --ignore-scripts "onnxruntime-node@$VERSION" >/dev/null)
tar -xzf "$tmp"/onnxruntime-node-*.tgz -C "$tmp" package/bin/napi-v6/linux/x64
real="$(ls "$tmp"/package/bin/napi-v6/linux/x64/libonnxruntime.so.1* | head -n 1)"
[ -f "$real" ] || { echo "fetch-ort: no libonnxruntime.so.1* in onnxruntime-node@$VERSION" >&2; exit 1; }
cp "$real" "$dir/"
ln -sf "$(basename "$real")" "$lib"
echo "$lib"
