#!/bin/sh
# Datadog agent 6.11.0 (demo build): a BAD release, for the rollout walkthrough in the README.
# Its configuration check rejects the configuration every 6.x agent was given, so the
# install fails on the first ring it reaches; the rollout then halts there and rolls that
# ring back (the agent reinstalls the previous version: "successfully rolled back").
set -eu
VERSION=6.11.0
echo "datadog-agent $VERSION: checking the configuration"
echo "datadog-agent $VERSION: config check failed: tags must be a map in 6.11 (got a list)" >&2
exit 1
