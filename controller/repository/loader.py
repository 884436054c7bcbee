"""`load_repository`: a folder of YAML -> a validated `Repository`, or every error at once.

Stage 1 of a pass (pure: reads files, no network). Steps, each collecting problems:
1. find `*.yaml`/`*.yml` (hidden folders skipped), parse with positions (`yamlmarks`);
2. validate each document against its kind's model (`models`), turning pydantic's
   errors into `path:line:col: message` lines;
3. make the resources from the validated documents (their spec, metadata and position),
   resolving `source`/`installer` paths;
4. cross-checks over the whole repository (`checks`) and the sources (`sources`).
A file or folder that cannot be read because of the machine (EIO, EACCES, ENOSPC: any errno
but the few a commit's content causes, `errors.CONTENT_ERRNOS`) is reported too, but the
load then raises `UnreadableFiles`: the controller retries such a commit, never blames it.
YAML files inside a package's source folder are payload (e.g. an agent's config file),
not repository documents, and are ignored, unless one of their documents says
`apiVersion: ssm-gitops/...` (so `source: .` next to the package's YAML loses nothing).
"""

from __future__ import annotations

import difflib
import errno
import gc
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from controller.repository import models as docs
from controller.repository.errors import (
    SpecError,
    SpecErrors,
    UnreadableFiles,
    caused_by_content,
)
from controller.repository.models import (
    Association,
    Package,
    PackageFile,
    PackageVersion,
    Repository,
    Settings,
    construct,
)
from controller.repository.sources import is_inside, resolve_reference
from controller.repository.yamlmarks import MarkedDict, MarkedList, Position, parse_documents

YAML_SUFFIXES = (".yaml", ".yml")


class PathDisplay:
    """How file paths appear in messages (see `load_repository`)."""

    def __init__(self, root: Path, prefix: str | None) -> None:
        self.root = root
        self.prefix = prefix
        self.cwd = Path.cwd()

    def __call__(self, path: Path) -> str:
        if self.prefix is not None:
            try:
                relative = path.relative_to(self.root).as_posix()
            except ValueError:
                return str(path)
            return self.prefix + ("" if relative == "." else relative)
        try:
            return path.relative_to(self.cwd).as_posix()
        except ValueError:
            return str(path)


@dataclass
class LoadedDocument:
    """A validated document, with its raw marked value for precise error positions."""

    shown: str  # the file as shown in messages
    file: Path  # absolute path of the YAML file
    raw: MarkedDict
    model: docs.YamlModel

    def position(self, *keys: str | int, key: bool = False) -> Position:
        """Where `keys` (a path into the document) was written; the deepest found part."""
        return locate(self.raw, keys, key_of_last=key)


@dataclass
class Problems:
    """The errors found so far; `add` keeps the loader's code linear."""

    errors: list[SpecError] = field(default_factory=list)

    def add(self, shown: str, position: Position, message: str) -> None:
        self.errors.append(SpecError(shown, position[0], position[1], message))


def locate(raw: Any, keys: tuple[str | int, ...], *, key_of_last: bool = False) -> Position:
    """The position of `keys` inside a marked value: the value's, or its key's if asked.

    When a part is absent (a missing field) the position of the last part found is used,
    preferring the key (`spec:`) to the first line of its value.
    """
    position: Position = getattr(raw, "start", (1, 1))
    node = raw
    for index, part in enumerate(keys):
        last = index == len(keys) - 1
        if isinstance(node, MarkedDict) and part in node:
            if last and key_of_last:
                return node.key_pos[part]
            position = node.value_pos[part] if last else node.key_pos[part]
            node = node[part]
        elif isinstance(node, MarkedList) and isinstance(part, int) and 0 <= part < len(node):
            position = node.item_pos[part]
            node = node[part]
        else:
            break
    return position


def _declares_ours(value: Any) -> bool:
    """True for a document that claims to be ours (so it is never mistaken for payload)."""
    return isinstance(value, dict) and str(value.get("apiVersion", "")).startswith("ssm-gitops/")


# A YAML file is read only up to this size: a repository document is a few hundred bytes,
# the 1,000-package benchmark's repository is 1.2 MB in all. Together with yamlmarks'
# MAX_NODES this bounds the memory one file can take.
MAX_YAML_BYTES = 4 * 1024 * 1024
# A generated or hostile document can hold a quarter of a million wrong values; listing
# each would take seconds and hundreds of MB for a message no one reads to the end.
MAX_ERRORS_PER_DOCUMENT = 100
_NOT_REGULAR = (
    "not a regular file (a FIFO, device or socket): remove it, or rename it so that it does "
    "not end in .yaml/.yml"
)
# A document claiming to be ours, found in the text of a file that could not be parsed in
# full (so a broken repository file inside a source folder is not taken for payload).
_OURS_TEXT = re.compile(r"^apiVersion:\s*[\"']?ssm-gitops/", re.MULTILINE)


def _too_big(size: int) -> str:
    return (
        f"{size} bytes, over the {MAX_YAML_BYTES // (1024 * 1024)} MiB limit for a YAML file: "
        "split it into several files"
    )


def _link_problem(error: OSError) -> str | None:
    """What a symlink that cannot be followed says about the commit (None: nothing)."""
    if error.errno == errno.ELOOP:
        return "symlink loop (the link leads back to itself): fix or remove the link"
    if error.errno == errno.ENOENT:
        return "symlink to a file that does not exist: fix or remove the link"
    return None


def _yaml_files(root: Path, unreadable: list[OSError]) -> Iterator[Path]:
    """Every YAML file below `root`; folders that cannot be listed go to `unreadable`
    (os.walk would skip them silently, and their documents would quietly vanish)."""
    for directory, subdirs, files in os.walk(root, onerror=unreadable.append):
        subdirs[:] = sorted(name for name in subdirs if not name.startswith("."))
        for name in sorted(files):
            if name.endswith(YAML_SUFFIXES) and not name.startswith("."):
                yield Path(directory) / name


# --- pydantic errors -> one sentence each ------------------------------------------------

_FIELD_NAMES = sorted(
    {
        info.alias or name
        for model in (
            docs.PackageDocument,
            docs.PackageMetadata,
            docs.PackageSpec,
            docs.VersionSpec,
            docs.FileSpec,
            docs.AssociationDocument,
            docs.AssociationSpec,
            docs.Target,
            docs.Output,
            docs.SettingsDocument,
            docs.SettingsSpec,
            docs.Artifacts,
            docs.Account,
            docs.Prune,
        )
        for name, info in model.model_fields.items()
    }
)


def _dotted(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        if part == "[key]":
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "document"


def _describe(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _message(error: ErrorDetails) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    context = error.get("ctx") or {}
    where = _dotted(loc)
    if kind == "extra_forbidden":
        name = str(loc[-1])
        parent = _dotted(loc[:-1])
        close = difflib.get_close_matches(name, _FIELD_NAMES, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else "remove it or fix the spelling"
        return f"unknown field {name!r} in {parent}: {hint}"
    if kind == "missing":
        parent = _dotted(loc[:-1])
        return f"{parent}: missing required field {loc[-1]!r}: add it"
    if kind == "string_type":
        if isinstance(value, bool | int | float):
            return (
                f"{where}: YAML reads this as {_describe(value)}, but it must be text: "
                "put the value in quotes"
            )
        return f"{where} must be text, got {_describe(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"{where} must be true or false, got {_describe(value)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{where} must be a whole number, got {_describe(value)}"
    if kind == "greater_than_equal":
        return f"{where} must be at least {context.get('ge')}, got {value}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"{where} must be a mapping (key: value), got {_describe(value)}"
    if kind in ("tuple_type", "list_type"):
        return f"{where} must be a list, got {_describe(value)}"
    if kind == "literal_error":
        return f"{where}: {_describe(value)} is not allowed: use one of {context.get('expected')}"
    if kind == "too_short":
        if context.get("min_length") == 1:
            return f"{where} must not be empty: add at least one item"
        return f"{where} needs at least {context.get('min_length')} items"
    if kind == "too_long":
        return _too_long(where, loc, context)
    if kind == "string_too_short":
        return f"{where} must not be empty"
    if kind == "string_too_long":
        return f"{where} is longer than {context.get('max_length')} characters: shorten it"
    if kind == "spec":
        return f"{where}: {error['msg']}"
    return f"{where}: {error['msg']}"


def _too_long(where: str, loc: tuple[str | int, ...], context: dict[str, Any]) -> str:
    limit = context.get("max_length")
    actual = context.get("actual_length")
    if loc and loc[-1] == "versions":
        # SSM quotas: a package holds at most 25 versions (contract: AWS facts).
        return (
            f"{where}: {actual} versions, but SSM keeps at most {limit} per package: remove "
            "old versions (enable pruneVersions to delete them from AWS too)"
        )
    if loc and loc[-1] == "files":
        return f"{where}: {actual} files, but SSM allows at most {limit} per version: merge some"
    return f"{where}: {actual} items, at most {limit} allowed"


def _drop_echoes(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """One line per mistake: drop what pydantic reports as a consequence of another error.

    - a list reported too short because its only items failed;
    - a required field reported missing when it is only misspelt: `arhc: x86_64` gives
      "unknown field 'arhc': did you mean 'arch'?" and no second "missing 'arch'" line.
    """
    locs = [tuple(error["loc"]) for error in errors]
    misspelt = set()
    for error, loc in zip(errors, locs, strict=True):
        if error["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(loc[-1]), _FIELD_NAMES, n=1, cutoff=0.6)
            if close:
                misspelt.add((*loc[:-1], close[0]))
    kept = []
    for error, loc in zip(errors, locs, strict=True):
        if error["type"] == "too_short" and any(
            len(other) > len(loc) and other[: len(loc)] == loc for other in locs
        ):
            continue
        if error["type"] == "missing" and loc in misspelt:
            continue
        kept.append(error)
    return kept


# --- the loader --------------------------------------------------------------------------


class _Loader:
    """One load of one repository: what was read so far, and the problems found."""

    def __init__(self, root: Path, display_prefix: str | None) -> None:
        self.root = Path(os.path.realpath(root))  # never raises on a symlink loop
        self.show = PathDisplay(root.absolute(), display_prefix)
        self.problems = Problems()
        self.invalid_packages: set[str] = set()
        # source/installer references: (folder of the YAML, text) -> resolved path or problem
        self._references: dict[tuple[Path, str], tuple[Path | None, str | None]] = {}
        self.bad_references: set[Path] = set()
        self.ours: set[Path] = set()  # YAML files with an `apiVersion: ssm-gitops/...` document
        # Files read only in part (broken YAML, over a limit) or not at all, with the text
        # there was: what they leave undefined is not reported again (see checks).
        self.cut_short: dict[Path, str] = {}
        # What the machine kept us from reading (see `UnreadableFiles`): never dropped, even
        # for payload, since what could not be read may have been one of our documents.
        self.unread: list[SpecError] = []

    def read_documents(self) -> list[tuple[Path, list[SpecError], list[LoadedDocument]]]:
        """Each YAML file with its own errors and valid documents."""
        results = []
        unreadable: list[OSError] = []
        for file in _yaml_files(self.root, unreadable):
            before = len(self.problems.errors)
            loaded = self._read_file(file)
            own = self.problems.errors[before:]
            del self.problems.errors[before:]
            results.append((file, own, loaded))
        for error in unreadable:
            problem = SpecError(
                self.show(Path(str(error.filename))),
                0,
                0,
                f"cannot list this folder ({error.strerror}): its YAML files cannot be read; "
                "fix its permissions",
                first=True,
            )
            self.problems.errors.append(problem)
            if not caused_by_content(error):
                self.unread.append(problem)
        return results

    def _cannot_read(self, shown: str, error: OSError) -> str | None:
        """A read that failed: the commit's fault for a content errno, else the machine's.
        None (no text) for `_read_text` to return."""
        problem = SpecError(
            shown, 1, 1, f"cannot read the file: {error.strerror or error}", first=True
        )
        self.problems.errors.append(problem)
        if not caused_by_content(error):
            self.unread.append(problem)
        return None

    def _read_text(self, file: Path, shown: str) -> str | None:
        """The text of one YAML file, or None with the problem recorded.

        Only regular files are opened (a FIFO named `x.yaml` would block the read forever,
        a device would never end), and only up to `MAX_YAML_BYTES`: the file is examined
        with lstat/stat first and opened non-blocking, then checked again on the open file.
        """
        try:
            info = os.lstat(file)
        except OSError as error:  # listed a moment ago: the machine (or a content errno)
            return self._cannot_read(shown, error)
        if stat.S_ISLNK(info.st_mode):
            # os.path.realpath, unlike Path.resolve on Python 3.11, never raises on a loop
            if not is_inside(Path(os.path.realpath(file)), self.root):
                return self._unreadable(shown, "symlink leading outside the repository: copy it in")
            try:
                info = os.stat(file)
            except OSError as error:
                problem = _link_problem(error)
                if problem is None:
                    return self._cannot_read(shown, error)
                return self._unreadable(shown, problem)
        if not stat.S_ISREG(info.st_mode):
            return self._unreadable(shown, _NOT_REGULAR)
        if info.st_size > MAX_YAML_BYTES:
            return self._unreadable(shown, _too_big(info.st_size))
        try:
            descriptor = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            with os.fdopen(descriptor, "rb") as stream:
                if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):  # swapped meanwhile
                    return self._unreadable(shown, _NOT_REGULAR)
                data = stream.read(MAX_YAML_BYTES + 1)
        except OSError as error:
            if error.errno in (errno.ENXIO, errno.ENODEV):  # swapped for a socket or device
                return self._unreadable(shown, _NOT_REGULAR)
            return self._cannot_read(shown, error)
        if len(data) > MAX_YAML_BYTES:  # grew since stat
            return self._unreadable(shown, _too_big(len(data)))
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            self.cut_short[file] = data.decode("utf-8", errors="replace")
            return self._unreadable(shown, f"not UTF-8 text ({error.reason}): save as UTF-8")

    def _unreadable(self, shown: str, message: str) -> str | None:
        """Record why a file cannot be read; None (no text) for `_read_text` to return."""
        self.problems.errors.append(SpecError(shown, 1, 1, message, first=True))
        return None

    def _read_file(self, file: Path) -> list[LoadedDocument]:
        shown = self.show(file)
        text = self._read_text(file, shown)
        if text is None:
            self.cut_short.setdefault(file, "")
            return []
        values, yaml_problems = parse_documents(text)
        if any(_declares_ours(document.value) for document in values):
            self.ours.add(file)
        for problem in yaml_problems:
            self.problems.errors.append(
                SpecError(shown, problem.line, problem.col, problem.message, first=problem.fatal)
            )
            if problem.fatal:  # the rest of the file is unread: what might it define?
                self.cut_short[file] = text
                if _OURS_TEXT.search(text):
                    self.ours.add(file)
        loaded = []
        for document in values:
            model = self._validate(shown, document.value, document.start)
            if model is not None:
                loaded.append(LoadedDocument(shown, file, document.value, model))
        return loaded

    def _validate(self, shown: str, value: Any, start: Position) -> docs.YamlModel | None:
        if value is None:  # an empty document, e.g. a trailing `---`
            return None
        if not isinstance(value, MarkedDict):
            self.problems.add(
                shown,
                start,
                f"a document must be a mapping with apiVersion, kind, metadata and spec, got "
                f"{_describe(value)}",
            )
            return None
        api_version = value.get("apiVersion")
        if api_version != docs.API_VERSION:
            got = "it is missing" if api_version is None else f"got {_describe(api_version)}"
            self.problems.add(
                shown,
                locate(value, ("apiVersion",)),
                f"apiVersion must be {docs.API_VERSION} ({got})",
            )
            return None
        kind = value.get("kind")
        model_type = docs.DOCUMENT_KINDS.get(kind) if isinstance(kind, str) else None
        if model_type is None:
            got = "it is missing" if kind is None else f"got {_describe(kind)}"
            self.problems.add(
                shown,
                locate(value, ("kind",)),
                f"kind must be one of {', '.join(docs.DOCUMENT_KINDS)} ({got})",
            )
            return None
        try:
            return model_type.model_validate(value)
        except ValidationError as invalid:
            metadata = value.get("metadata")
            if kind == "Package" and isinstance(metadata, dict):
                self.invalid_packages.add(str(metadata.get("name")))
            errors = _drop_echoes(invalid.errors())
            for index, error in enumerate(errors):
                loc = tuple(error["loc"])
                if loc and loc[-1] == "[key]":
                    position = locate(value, loc[:-1], key_of_last=True)
                else:
                    position = locate(value, loc, key_of_last=error["type"] == "extra_forbidden")
                if index == MAX_ERRORS_PER_DOCUMENT:
                    more = len(errors) - index
                    self.problems.add(
                        shown,
                        position,
                        f"{more} more problems in this document: fix the above first",
                    )
                    break
                self.problems.add(shown, position, _message(error))
            return None

    # --- models ----------------------------------------------------------------------

    def package(self, loaded: LoadedDocument) -> Package:
        document = loaded.model
        assert isinstance(document, docs.PackageDocument)
        base_dir = loaded.file.parent
        # The document passed validation, so these marked lists exist (read directly: this
        # is the hot path of loading a large repository).
        raw_versions = loaded.raw["spec"]["versions"]
        versions = []
        for v_index, version in enumerate(document.spec.versions):
            files = []
            raw_files = raw_versions[v_index]["files"]
            for f_index, entry in enumerate(version.files):
                where = ("spec", "versions", v_index, "files", f_index)
                # Resolved from the text as written (the validated Path drops a "./").
                written = "source" if entry.source is not None else "installer"
                resolved = self._reference(
                    loaded, base_dir, raw_files[f_index][written], (*where, written)
                )
                files.append(
                    construct(
                        PackageFile,
                        entry.__dict__,
                        {written: resolved},
                        path=loaded.shown,
                        line=raw_files.item_pos[f_index][0],
                    )
                )
            versions.append(
                construct(
                    PackageVersion,
                    version.__dict__,
                    files=tuple(files),
                    path=loaded.shown,
                    line=raw_versions.item_pos[v_index][0],
                )
            )
        return construct(
            Package,
            document.spec.__dict__,
            document.metadata.__dict__,
            versions=tuple(versions),
            path=loaded.shown,
            line=loaded.raw.start[0],
        )

    def _reference(
        self, loaded: LoadedDocument, base_dir: Path, text: str, where: tuple[str | int, ...]
    ) -> Path:
        """Resolve a source/installer path; a bad one is reported and kept (lexically)."""
        key = (base_dir, text)
        if key not in self._references:
            try:
                self._references[key] = resolve_reference(text, base_dir, self.root)
            except OSError as error:  # the machine's (resolve_reference judges the rest)
                self._references[key] = (None, f"cannot read {text!r}: {error.strerror}")
                line, col = loaded.position(*where)
                self.unread.append(
                    SpecError(
                        loaded.shown,
                        line,
                        col,
                        f"{where[-1]}: cannot read {text!r}: {error.strerror}",
                    )
                )
        resolved, problem = self._references[key]
        if problem is not None:
            self.problems.add(loaded.shown, loaded.position(*where), f"{where[-1]}: {problem}")
            lexical = Path(os.path.normpath(base_dir / text))
            self.bad_references.add(lexical)
            return lexical
        assert resolved is not None
        return resolved

    def association(self, loaded: LoadedDocument) -> Association:
        document = loaded.model
        assert isinstance(document, docs.AssociationDocument)
        return construct(
            Association,
            document.spec.__dict__,
            document.metadata.__dict__,
            path=loaded.shown,
            line=loaded.raw.start[0],
        )

    def settings(self, loaded: LoadedDocument) -> Settings:
        document = loaded.model
        assert isinstance(document, docs.SettingsDocument)
        return construct(
            Settings,
            document.spec.__dict__,
            document.metadata.__dict__,
            path=loaded.shown,
            line=loaded.raw.start[0],
        )


def load_repository(root: Path, *, display_prefix: str | None = None) -> Repository:
    """Load and check every YAML file under `root` and every source it names.

    Raises `SpecErrors` with every problem found (sorted by path and line). Paths in
    messages are `display_prefix` + the path relative to `root` when a prefix is given
    (the controller passes "" for a git checkout), else relative to the current directory
    when below it, else absolute.
    """
    # Loading allocates many small objects and creates no reference cycles: pausing the
    # cyclic garbage collector saves about a fifth of the CPU on a large repository.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _load(Path(root), display_prefix)
    finally:
        if collecting:
            gc.enable()


def _load(root: Path, display_prefix: str | None) -> Repository:
    from controller.repository import checks  # checks imports the loader's types

    root = Path(root)
    loader = _Loader(root, display_prefix)
    if not root.is_dir():
        problem = (
            f"is a file, not a folder: give the repository folder ({root.parent})"
            if root.exists()
            else "no such directory: give the repository folder"
        )
        # As given: there is nothing below it to show relative paths of.
        raise SpecErrors([SpecError(str(root), 0, 0, problem)])
    files = loader.read_documents()

    # Pass 1: packages, to learn the source folders; YAML inside them is payload.
    packages: list[tuple[Package, LoadedDocument]] = []
    for _file, _errors, loaded_documents in files:
        for loaded in loaded_documents:
            if isinstance(loaded.model, docs.PackageDocument):
                packages.append((loader.package(loaded), loaded))
    payload_folders = {
        file.source
        for package, _ in packages
        for version in package.versions
        for file in version.files
        if file.source is not None
    }

    def is_payload(path: Path) -> bool:
        # A YAML file is payload when one of its folders is a source folder.
        # (`path` came from walking the resolved root without following symlinks.)
        return any(folder in payload_folders for folder in path.parents)

    kept: list[LoadedDocument] = []
    for file, errors, loaded_documents in files:
        if payload_folders and file not in loader.ours and is_payload(file):
            loader.cut_short.pop(file, None)  # payload: zipped as it is, never parsed again
            continue
        loader.problems.errors.extend(errors)
        kept.extend(loaded_documents)
    kept_ids = {id(loaded) for loaded in kept}
    packages = [(package, loaded) for package, loaded in packages if id(loaded) in kept_ids]

    associations = [
        (loader.association(loaded), loaded)
        for loaded in kept
        if isinstance(loaded.model, docs.AssociationDocument)
    ]
    settings = [
        (loader.settings(loaded), loaded)
        for loaded in kept
        if isinstance(loaded.model, docs.SettingsDocument)
    ]
    try:
        checks.check_repository(
            packages,
            associations,
            settings,
            root=loader.root,
            problems=loader.problems,
            invalid_packages=loader.invalid_packages,
            bad_references=loader.bad_references,
            unread_texts=tuple(loader.cut_short.values()),
        )
    except OSError as error:  # scanning a source folder (`sources.scan_source`)
        if caused_by_content(error):
            raise
        where = loader.show(Path(str(error.filename))) if error.filename else "the repository"
        loader.unread.append(SpecError(where, 0, 0, f"cannot read it: {error.strerror}"))
    if loader.unread:
        raise UnreadableFiles(loader.problems.errors, loader.unread)
    if loader.problems.errors:
        raise SpecErrors(loader.problems.errors)
    return construct(
        Repository,
        root=loader.root,
        packages=tuple(package for package, _ in packages),
        associations=tuple(association for association, _ in associations),
        settings=settings[0][0] if settings else None,
    )
