"""A real local git repository for runtime tests: write files, commit, get the sha."""

from __future__ import annotations

from pathlib import Path

import pygit2

SIGNATURE = pygit2.Signature("Test Author", "test@example.com")


class GitRepo:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.repo = pygit2.init_repository(str(path), initial_head="main")

    def commit(self, files: dict[str, str | None], message: str) -> str:
        """Write (or, with None, delete) `files` and commit them on main."""
        for name, content in files.items():
            target = self.path / name
            if content is None:
                target.unlink(missing_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        index = self.repo.index
        index.add_all()
        deleted = [n for n, c in files.items() if c is None]
        if deleted:  # an empty pathspec would match every file
            index.remove_all(deleted)
        index.write()
        tree = index.write_tree()
        parents = [] if self.repo.head_is_unborn else [self.repo.head.target]
        return str(self.repo.create_commit("HEAD", SIGNATURE, SIGNATURE, message, tree, parents))
