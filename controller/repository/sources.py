"""What a package file points at: source folders and installers, checked and listed.

Stage 1 (validation) and stage 2 (build) share this module, so what `validate` accepts is
exactly what `build` zips. A source folder must lie inside the repository, must not lead
outside it through a symlink, must hold only regular files (no devices, FIFOs, sockets),
and must have the platform's install and uninstall scripts at its top level: the agent
unpacks the zip and runs `install.sh`/`install.ps1` from the root (agent-semantics.md:
"package is missing install action" when a parent folder was zipped).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from controller.repository import rules
from controller.repository.errors import caused_by_content

# Simple mode (Distributor user guide, "Create a package (simple)"): the installer types
# whose install and uninstall commands are known, and the platforms that can run them.
INSTALLER_PLATFORMS: dict[str, tuple[str, ...]] = {
    ".rpm": ("amazon", "centos", "opensuse", "opensuseleap", "oracle", "redhat", "suse"),
    ".deb": ("debian", "ubuntu"),
    ".msi": ("windows",),
    ".exe": ("windows",),
}


@dataclass(frozen=True)
class SourceEntry:
    """One regular file to zip: its name inside the zip and where to read it."""

    name: str  # posix path relative to the source folder: the zip entry name
    path: Path  # absolute, symlinks resolved
    size: int
    executable: bool


@dataclass(frozen=True)
class SourceTree:
    """A scanned source folder: its files in zip order, and what is wrong with it."""

    folder: Path
    entries: tuple[SourceEntry, ...] = ()
    problems: tuple[str, ...] = ()
    top_level: frozenset[str] = field(default_factory=frozenset)

    def has_script(self, action: str, extension: str) -> bool:
        return f"{action}{extension}" in self.top_level


def is_inside(path: Path, root: Path) -> bool:
    """True if the resolved `path` is `root` or below it (both already resolved)."""
    inner, outer = str(path), str(root)
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


# What a path that cannot be found says about the commit: it names nothing there.
_MISSING = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG})


def resolve_reference(text: str, base_dir: Path, root: Path) -> tuple[Path | None, str | None]:
    """A `source`/`installer` value -> the absolute resolved path, or what is wrong with it.

    Paths are relative to the directory of the YAML file that names them.
    """
    if os.path.isabs(text) or text.startswith("~"):
        return None, f"{text!r} must be relative to this file's folder, not absolute"
    lexical = Path(os.path.normpath(base_dir / text))
    if not is_inside(lexical, root):
        return None, f"{text!r} leads outside the repository: keep sources inside it"
    # os.path.realpath, unlike Path.resolve on Python 3.11, never raises on a symlink loop
    resolved = Path(os.path.realpath(lexical))
    if not is_inside(resolved, root):
        return None, f"{text!r} is a symlink leading outside the repository: copy the files in"
    try:
        os.stat(resolved)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return None, f"{text!r} is a symlink loop (it leads back to itself): fix the link"
        if error.errno not in _MISSING:
            raise  # the machine's (EIO, EACCES, ...): the commit is read again, not judged
        where = lexical.relative_to(root).as_posix()
        return None, f"{text!r} does not exist (looked for {where}): fix the path or add it"
    return resolved, None


def _broken_link(error: OSError) -> str:
    """What the commit did wrong, or `error` itself raised when the machine failed."""
    if error.errno == errno.ELOOP:
        return "a symlink loop (the link leads back to itself): fix or remove the link"
    if error.errno == errno.ENOENT:
        return "a symlink to a file that does not exist: fix or remove the link"
    if caused_by_content(error):
        return f"cannot read it: {error.strerror}"
    raise error


def scan_source(folder: Path, root: Path) -> SourceTree:
    """Every regular file under `folder` (sorted, symlinks inside the repository followed
    for files), and each problem that would make the zip unusable or unsafe.

    Raises the OSError when the machine fails a read (EIO, EACCES, ...): that says nothing
    about the folder, and the caller retries (the controller) or reports it (build)."""
    if not folder.is_dir():
        return SourceTree(folder, problems=(f"{folder} is not a folder: source names a folder",))
    entries: list[SourceEntry] = []
    problems: list[str] = []
    top_level: set[str] = set()

    def walk(directory: Path, prefix: str) -> None:
        with os.scandir(directory) as iterator:
            children = sorted(iterator, key=lambda entry: entry.name)
        for child in children:
            name = prefix + child.name
            if child.name == ".git":
                # A submodule (or a nested clone): its files are not in this repository's
                # commits, so the published zip would silently lack them.
                where = prefix.rstrip("/") or "the source folder"
                problems.append(
                    f"{where} is a git submodule: its files are not part of this repository "
                    "and would be left out of the zip; copy the files in instead"
                )
                continue
            if not prefix:
                top_level.add(child.name)
            path = Path(child.path)  # canonical: `folder` is resolved, symlinks handled here
            if child.is_symlink():
                path = Path(os.path.realpath(path))  # unlike Path.resolve, no error on loops
                if not is_inside(path, root):
                    problems.append(f"{name} is a symlink leading outside the repository")
                    continue
                if path.is_dir():
                    problems.append(f"{name} is a symlink to a folder: copy the folder instead")
                    continue
            try:
                info = os.stat(path)
            except OSError as error:  # a symlink's target, or the machine (raised)
                problems.append(f"{name}: {_broken_link(error)}")
                continue
            if stat.S_ISDIR(info.st_mode):
                walk(path, name + "/")
            elif stat.S_ISREG(info.st_mode):
                if info.st_size > rules.MAX_FILE_BYTES:
                    problems.append(
                        f"{name} is {info.st_size} bytes, over Distributor's 1 GB file limit"
                    )
                entries.append(
                    SourceEntry(
                        name=name,
                        path=path,
                        size=info.st_size,
                        executable=bool(info.st_mode & 0o100),
                    )
                )
            else:
                problems.append(f"{name} is not a regular file (device, FIFO or socket): remove it")

    try:
        walk(folder, "")
    except OSError as error:
        if not caused_by_content(error):
            raise
        problems.append(f"cannot read {error.filename}: {error.strerror}")
    return SourceTree(folder, tuple(entries), tuple(problems), frozenset(top_level))


def script_problems(tree: SourceTree, platform: str) -> list[str]:
    """What is missing or contradictory among the agent's scripts for `platform`."""
    wanted = rules.script_extension(platform)
    other = ".sh" if wanted == ".ps1" else ".ps1"
    problems: list[str] = []
    for action in rules.SCRIPT_ACTIONS:
        if tree.has_script(action, wanted) and tree.has_script(action, other):
            problems.append(
                f"both {action}.sh and {action}.ps1 at the top of the source: the agent refuses "
                "a package with both; keep one"
            )
    for action in rules.REQUIRED_ACTIONS:
        script = action + wanted
        if tree.has_script(action, wanted):
            continue
        nested = [entry.name for entry in tree.entries if entry.name.endswith("/" + script)]
        if nested:
            problems.append(
                f"{script} must be at the top of the source folder, found {nested[0]}: point "
                "source at that subfolder or move the scripts up"
            )
        elif tree.has_script(action, other):
            problems.append(f"{platform} runs {script}, but the source has {action}{other}")
        else:
            problems.append(f"the source has no {script}: add it ({platform} runs {script})")
    return problems


# Generated scripts quote the installer's name; keep it to characters that need no escaping.
_INSTALLER_NAME = re.compile(r"^[A-Za-z0-9._+-]+$")


def installer_problems(installer: Path, platform: str) -> list[str]:
    """What is wrong with an installer for `platform` in simple mode."""
    problems: list[str] = []
    if not _INSTALLER_NAME.match(installer.name):
        problems.append(
            f"installer name {installer.name!r}: rename it to letters, digits and . _ + - "
            "(the generated scripts use the name as is)"
        )
    extension = installer.suffix.lower()
    if extension not in INSTALLER_PLATFORMS:
        known = ", ".join(INSTALLER_PLATFORMS)
        return [f"{installer.name}: unsupported installer type; use one of {known} or a source"]
    if platform not in INSTALLER_PLATFORMS[extension]:
        runs = ", ".join(INSTALLER_PLATFORMS[extension])
        problems.append(f"a {extension} installer cannot install on {platform} (it suits {runs})")
    if not installer.is_file():
        problems.append(f"{installer.name} is not a regular file")
    elif installer.stat().st_size > rules.MAX_FILE_BYTES:
        problems.append(f"{installer.name} is over Distributor's 1 GB file limit")
    return problems
