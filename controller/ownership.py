"""The ownership tag: the one mark that makes an SSM resource ours to change or delete.

Shared by every stage: the spec layer refuses it as a user tag, desired state adds it,
observe and apply trust only resources that carry it with our owner name (contract:
Ownership and safety). A neutral module, so the spec layer need not import reconcile.
"""

from __future__ import annotations

OWNER_TAG = "ssm-gitops:owner"
