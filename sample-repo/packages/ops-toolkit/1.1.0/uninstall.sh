#!/bin/sh
# Remove every installed ops-toolkit version.
set -eu
rm -rf /opt/ops-toolkit
echo "ops-toolkit removed"
