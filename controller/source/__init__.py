"""The git repository a pass reads: fetch the followed ref, materialise a commit's tree."""

from controller.source.git import GitCredentials, GitError, GitSource, Revision, redact

__all__ = ["GitCredentials", "GitError", "GitSource", "Revision", "redact"]
