#!/bin/sh
# Run after install/update: the active tool must report the version just installed.
set -eu
test "$(/opt/ops-toolkit/current/bin/ops-toolkit version)" = "1.0.0"
