#!/usr/bin/env bash
# Install the object-store servers that internal/storage's tests run on
# loopback: versitygw (S3), fake-gcs-server (GCS) and Azurite (Azure Blob).
# Idempotent: each binary is built once per pinned version into a cache
# directory and reused afterwards. Prints the PATH line the tests need.
#
#   FERRY_TEST_SERVERS_CACHE  cache root (default $HOME/.cache/ferry-test-servers)
#
# The tests also find the binaries without PATH through FERRY_TEST_VERSITYGW,
# FERRY_TEST_FAKE_GCS and FERRY_TEST_AZURITE, or in "$CACHE/bin" directly.
set -euo pipefail

VERSITYGW_VERSION=v1.8.0
FAKE_GCS_VERSION=v1.56.1
AZURITE_VERSION=3.37.0

CACHE=${FERRY_TEST_SERVERS_CACHE:-$HOME/.cache/ferry-test-servers}
BIN="$CACHE/bin"
mkdir -p "$BIN"
start=$(date +%s)

# go_tool NAME MODULE VERSION: build MODULE@VERSION into $BIN/NAME unless the
# stamp file says that version is already there.
go_tool() {
  local name=$1 module=$2 version=$3 stamp="$BIN/.$1.version"
  if [[ -x "$BIN/$name" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then
    echo "== $name $version: cached"
    return
  fi
  echo "== $name $version: go install $module@$version"
  GOBIN="$BIN" CGO_ENABLED=0 go install -trimpath -ldflags='-s -w' "$module@$version"
  echo "$version" >"$stamp"
}

go_tool versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION"
go_tool fake-gcs-server github.com/fsouza/fake-gcs-server "$FAKE_GCS_VERSION"

# Azurite comes from npm, installed under the cache (never the repository),
# without its optional dependencies. A small wrapper runs its blob service.
stamp="$BIN/.azurite.version"
if [[ -x "$BIN/azurite-blob" && -f "$stamp" && "$(cat "$stamp")" == "$AZURITE_VERSION" ]]; then
  echo "== azurite $AZURITE_VERSION: cached"
elif command -v npm >/dev/null 2>&1; then
  echo "== azurite $AZURITE_VERSION: npm install"
  mkdir -p "$CACHE/azurite"
  npm install --prefix "$CACHE/azurite" --no-audit --no-fund --omit=optional --loglevel=error \
    "azurite@$AZURITE_VERSION" >/dev/null
  cat >"$BIN/azurite-blob" <<WRAP
#!/bin/sh
exec node "$CACHE/azurite/node_modules/azurite/dist/src/blob/main.js" "\$@"
WRAP
  chmod +x "$BIN/azurite-blob"
  echo "$AZURITE_VERSION" >"$stamp"
else
  echo "== azurite: npm not found; the Azure tests will skip" >&2
fi

echo "== test servers ready in $(( $(date +%s) - start ))s; for the tests:"
echo "export PATH=\"$BIN:\$PATH\""
