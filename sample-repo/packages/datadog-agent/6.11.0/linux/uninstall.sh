#!/bin/sh
# Remove the Datadog agent (demo build); the configuration in /opt/datadog-agent/etc stays
# only if SSM_DD_KEEP_CONFIG=true.
set -eu
PREFIX=/opt/datadog-agent
if [ -x "$PREFIX/bin/datadog-agent" ]; then
    "$PREFIX/bin/datadog-agent" stop || true
fi
if [ "${SSM_DD_KEEP_CONFIG:-false}" = true ]; then
    rm -rf "$PREFIX/bin" "$PREFIX/version"
else
    rm -rf "$PREFIX"
fi
rm -rf /var/lib/datadog-agent
echo "datadog-agent 6.11.0 removed"
