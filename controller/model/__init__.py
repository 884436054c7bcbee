"""The shared vocabulary of a pass, below both the AWS adapter and the reconciler.

`state.py` holds the two values `plan()` compares (desired state from git, observed state
from SSM) and `ownership.py` the tags that make a resource ours. Nothing here performs I/O
or imports boto3, `controller.aws`, `controller.reconcile` or `controller.runtime`: both
sides import it, so neither depends on the other (issue 12).
"""
