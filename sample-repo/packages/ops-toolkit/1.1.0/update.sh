#!/bin/sh
# In-place update to ops-toolkit 1.1.0: install next to the running version, then switch the
# 'current' link in one rename, so a tool started during the update never sees a half copy.
set -eu
VERSION=1.1.0
ROOT=/opt/ops-toolkit
mkdir -p "$ROOT/$VERSION"
cp -R bin "$ROOT/$VERSION/"
chmod 0755 "$ROOT/$VERSION"/bin/*
ln -sfn "$ROOT/$VERSION" "$ROOT/current.new"
mv -T "$ROOT/current.new" "$ROOT/current" 2>/dev/null || {
    rm -f "$ROOT/current"; mv "$ROOT/current.new" "$ROOT/current"; }
# Keep only the active version.
for old in "$ROOT"/*; do
    case "$old" in "$ROOT/current" | "$ROOT/$VERSION") ;; *) rm -rf "$old" ;; esac
done
echo "ops-toolkit updated in place to $VERSION"
