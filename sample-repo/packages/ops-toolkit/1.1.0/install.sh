#!/bin/sh
# ops-toolkit 1.1.0: the platform team's diagnostics scripts. Each version lives in its own
# folder under /opt/ops-toolkit; /opt/ops-toolkit/current points at the active one.
set -eu
VERSION=1.1.0
ROOT=/opt/ops-toolkit
mkdir -p "$ROOT/$VERSION"
cp -R bin "$ROOT/$VERSION/"
chmod 0755 "$ROOT/$VERSION"/bin/*
ln -sfn "$ROOT/$VERSION" "$ROOT/current"
echo "ops-toolkit $VERSION installed"
