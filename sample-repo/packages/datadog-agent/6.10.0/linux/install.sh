#!/bin/sh
# Datadog agent 6.10.0 (demo build) for Amazon Linux. SSM Agent runs `sh install.sh` in the
# unpacked package folder; additionalArguments arrive as SSM_* environment variables.
set -eu
VERSION=6.10.0
PREFIX=/opt/datadog-agent
mkdir -p "$PREFIX/bin" "$PREFIX/etc" /var/log/datadog /var/lib/datadog-agent
cp datadog-agent "$PREFIX/bin/datadog-agent"
chmod 0755 "$PREFIX/bin/datadog-agent"
# Keep an existing configuration (an operator may have edited it); seed it otherwise.
if [ ! -f "$PREFIX/etc/datadog.yaml" ]; then
    sed -e "s/^site:.*/site: ${SSM_DD_SITE:-datadoghq.com}/" \
        -e "s/^tags:.*/tags: [${SSM_DD_TAGS:-}]/" \
        datadog.yaml.example > "$PREFIX/etc/datadog.yaml"
fi
echo "$VERSION" > "$PREFIX/version"
"$PREFIX/bin/datadog-agent" start
echo "datadog-agent $VERSION installed in $PREFIX"
