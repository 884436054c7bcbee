"""Stage 1 of a pass: the repository format (models, loading with file:line, checks, schema).

Pure: no AWS, no network. See docs/architecture.md for the interface the later stages use.
"""
