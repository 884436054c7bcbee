"""The git repository a pass reads: fetch the followed ref, materialise a commit's tree."""

from controller.source.git import (
    GitCredentials,
    GitError,
    GitSource,
    Revision,
    SourceUnavailable,
    source_root,
)
from controller.source.urls import redact, redact_text

__all__ = [
    "GitCredentials",
    "GitError",
    "GitSource",
    "Revision",
    "SourceUnavailable",
    "redact",
    "redact_text",
    "source_root",
]
