"""One instance's SSM Agent running AWS-ConfigureAWSPackage for one package action.

The rollout (`rollout.py`) calls `Agent.configure_package(request)` per targeted instance;
this module decides what to download and which scripts to run, in the order the real agent
does, and returns the plugin result (status + stdout/stderr) that becomes the association's
per-instance status or the command invocation's output.

Reference: ../shared/design/agent-semantics.md, point by point, itself read from the agent
source agent/plugins/configurepackage/: configurepackage.go (input checks, manifest first,
package lock, checkAlreadyInstalled), configurepackage_execute.go (executeInstall /
executeUninstall with rollback), localpackages/ (install state, lock text).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath

from controller.local.fleet.manifest import ManifestError, ManifestFile, parse_manifest, select_file
from controller.local.fleet.model import Instance
from controller.local.fleet.osdetect import detect_platform
from controller.local.fleet.roots import DOWNLOAD_DIR, PACKAGES_DIR, host_path
from controller.local.fleet.sandbox import Sandbox
from controller.local.fleet.scripts import PackageScriptError, PackageScripts, discover
from controller.local.fleet.source import PackageDocument, PackageSource, PackageSourceError
from controller.local.fleet.state import InstallState, load_state, set_state

INSTALL = "Install"
UNINSTALL = "Uninstall"
# installationType: exactly "In-place update"; anything else is "Uninstall and reinstall".
IN_PLACE_UPDATE = "In-place update"
UNINSTALL_AND_REINSTALL = "Uninstall and reinstall"
# Linux exit code for "success, reboot and call me again" (agent-semantics.md "Running").
REBOOT_EXIT_CODE = 194
# A package that asks for a reboot on every run would loop forever; the simulation stops.
MAX_REBOOTS = 3


class PluginStatus(StrEnum):
    """The plugin's final status (the agent's contracts.ResultStatus values we produce)."""

    SUCCESS = "Success"
    FAILED = "Failed"
    TIMED_OUT = "TimedOut"


class _Step(StrEnum):
    SUCCESS = "Success"
    FAILED = "Failed"
    REBOOT = "SuccessAndReboot"


@dataclass(frozen=True)
class PackageRequest:
    """The AWS-ConfigureAWSPackage parameters."""

    action: str
    name: str
    version: str = ""  # blank: the default version (Install) / the installed one (Uninstall)
    installation_type: str = UNINSTALL_AND_REINSTALL
    additional_arguments: Mapping[str, str] = field(default_factory=dict)

    @property
    def in_place(self) -> bool:
        return self.installation_type == IN_PLACE_UPDATE


@dataclass(frozen=True)
class PluginResult:
    status: PluginStatus
    stdout: str
    stderr: str

    @property
    def summary(self) -> str:
        """The outcome in a few lines: the agent's last word, then the errors. Shown where
        SSM keeps only a summary (ExecutionSummary: 512 characters)."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        return "\n".join(part for part in (lines[-1] if lines else "", self.stderr) if part)

    @property
    def output(self) -> str:
        """stdout and stderr as the console shows a plugin's output."""
        if not self.stderr:
            return self.stdout
        errors = f"----------ERROR-------\n{self.stderr}"
        return f"{self.stdout}\n\n{errors}" if self.stdout else errors


class RequestError(Exception):
    """Parameters the agent rejects before doing anything."""


def request_from_parameters(parameters: Mapping[str, Sequence[str] | str]) -> PackageRequest:
    """Association / SendCommand `Parameters` (each value a list of strings) -> request."""

    def one(key: str, default: str = "") -> str:
        value = parameters.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            return value
        return value[0] if value else default

    raw_arguments = one("additionalArguments", "{}").strip() or "{}"
    try:
        arguments = json.loads(raw_arguments)
    except ValueError as err:
        raise RequestError(f"invalid input: additionalArguments is not a JSON map: {err}") from err
    if not isinstance(arguments, dict):
        raise RequestError("invalid input: additionalArguments must be a JSON map of strings")
    return PackageRequest(
        action=one("action", INSTALL),
        name=one("name"),
        version=one("version"),
        installation_type=one("installationType", UNINSTALL_AND_REINSTALL),
        additional_arguments={str(k): str(v) for k, v in arguments.items()},
    )


@dataclass(frozen=True)
class _Installer:
    """One unpacked package version on the instance."""

    name: str
    version: str
    scripts: PackageScripts


class _Output:
    """The plugin's stdout / stderr as the agent appends to them."""

    def __init__(self) -> None:
        self.info: list[str] = []
        self.errors: list[str] = []
        self.timed_out = False

    def result(self, status: PluginStatus) -> PluginResult:
        if status is PluginStatus.FAILED and self.timed_out:
            status = PluginStatus.TIMED_OUT
        return PluginResult(status, "\n".join(self.info), "\n".join(self.errors))


class _Failed(Exception):
    """Ends the action as Failed with this message on stderr (before any script ran)."""


class Agent:
    """The agent of one instance. Thread-safe: the package lock serialises actions."""

    def __init__(
        self,
        instance: Instance,
        source: PackageSource,
        sandbox: Sandbox,
        *,
        region: str = "us-east-1",
        account_id: str = "123456789012",
    ) -> None:
        self.instance = instance
        self.source = source
        self.sandbox = sandbox
        self.region = region
        self.account_id = account_id
        self._lock = threading.Lock()
        self._busy: dict[str, str] = {}  # package -> action in progress

    @property
    def platform(self) -> tuple[str, str, str]:
        """(name, version, arch) as detected on the instance, for manifests and BWS_*."""
        spec = self.instance.spec
        name, version = detect_platform(
            self.instance.root, windows_version=spec.version if spec.is_windows else None
        )
        return name, version, spec.arch

    # -- the plugin -------------------------------------------------------------------

    def configure_package(self, request: PackageRequest) -> PluginResult:
        out = _Output()
        try:
            _check_request(request)
            # The agent always reads the manifest (the document) before acting.
            document = self.source.package_document(request.name, _wanted(request))
        except (RequestError, PackageSourceError) as err:
            out.errors.append(str(err))
            return out.result(PluginStatus.FAILED)
        if not self._lock_package(package_key(request.name), request.action, out):
            return out.result(PluginStatus.FAILED)
        try:
            for _reboot in range(MAX_REBOOTS + 1):
                if request.action == INSTALL:
                    step = self._install(request, document, out)
                else:
                    step = self._uninstall(request, out)
                if step is not _Step.REBOOT:
                    return out.result(
                        PluginStatus.SUCCESS if step is _Step.SUCCESS else PluginStatus.FAILED
                    )
                # Exit 194: the instance "reboots" and the agent runs the plugin again,
                # resuming from the persisted install state.
            out.errors.append(f"the package asked for a reboot {MAX_REBOOTS + 1} times; stopped")
            return out.result(PluginStatus.FAILED)
        except _Failed as err:
            out.errors.append(str(err))
            return out.result(PluginStatus.FAILED)
        finally:
            self._unlock_package(package_key(request.name))

    def _lock_package(self, name: str, action: str, out: _Output) -> bool:
        """One action per package at a time (localpackages_lock.go, its exact text)."""
        with self._lock:
            if name in self._busy:
                out.errors.append(
                    f'Package "{name}" is already in the process of action "{self._busy[name]}"'
                )
                return False
            self._busy[name] = action
            return True

    def _unlock_package(self, name: str) -> None:
        with self._lock:
            self._busy.pop(name, None)

    # -- Install ----------------------------------------------------------------------

    def _install(self, request: PackageRequest, document: PackageDocument, out: _Output) -> _Step:
        name, target = package_key(request.name), document.version_name
        current = load_state(self.instance.root, name)
        installed = current.installed_version if current else ""
        state = current.state if current else InstallState.NONE
        inst = self._prepare(document, out)
        uninst = None
        if installed and installed != target:
            uninst = self._local_installer(name, installed)
        self._refuse_what_cannot_run(inst)

        # checkAlreadyInstalled: same version installed (or an install resumed after a
        # reboot) -> only `validate` runs.
        resuming = state in (InstallState.INSTALLING, InstallState.UPDATING) and (
            current is not None and current.version == target
        )
        already = installed == target and state is InstallState.INSTALLED
        validated = (already or resuming) and (
            self._run(inst, "validate", request, out) is _Step.SUCCESS
        )
        if validated and resuming:
            if uninst is not None:
                self._cleanup(uninst)
            set_state(self.instance.root, name, target, InstallState.INSTALLED)
            out.info.append(f"Successfully installed {name} {target}")
            return _Step.SUCCESS
        if validated:
            out.info.append(f"{name} {target} is already installed")
            return _Step.SUCCESS
        if request.in_place and uninst is not None:
            return self._execute_update(inst, uninst, request, out)
        if uninst is not None:
            return self._execute_uninstall(inst, uninst, False, request, out)
        return self._execute_install(inst, None, False, request, out)

    def _execute_install(
        self,
        inst: _Installer,
        uninst: _Installer | None,
        is_rollback: bool,
        request: PackageRequest,
        out: _Output,
    ) -> _Step:
        """configurepackage_execute.go executeInstall: install + validate, roll back on
        failure by uninstalling the new version and reinstalling the old one."""
        root = self.instance.root
        new_state = InstallState.ROLLBACK_INSTALL if is_rollback else InstallState.INSTALLING
        set_state(root, inst.name, inst.version, new_state)
        step = self._run(inst, "install", request, out)
        if step is _Step.SUCCESS:
            step = self._run(inst, "validate", request, out)
        if step is _Step.REBOOT:
            out.info.append(f"Rebooting to finish installation of {inst.name} {inst.version}")
            return _Step.REBOOT
        if step is _Step.FAILED:
            out.errors.append(f"Failed to install package; install status {step}")
            if is_rollback or uninst is None:
                set_state(root, inst.name, inst.version, InstallState.FAILED)
                return _Step.FAILED
            return self._execute_uninstall(uninst, inst, True, request, out)
        if uninst is not None:
            self._cleanup(uninst)
        set_state(root, inst.name, inst.version, InstallState.INSTALLED)
        if is_rollback:
            assert uninst is not None
            out.info.append(
                f"Failed to install {uninst.name} {uninst.version}, "
                f"successfully rolled back to {inst.name} {inst.version}"
            )
            return _Step.FAILED
        out.info.append(f"Successfully installed {inst.name} {inst.version}")
        return _Step.SUCCESS

    def _execute_uninstall(
        self,
        inst: _Installer | None,
        uninst: _Installer,
        is_rollback: bool,
        request: PackageRequest,
        out: _Output,
    ) -> _Step:
        """executeUninstall: the old version's uninstall (its failure does not stop an
        upgrade), then the install of `inst` if there is one."""
        root = self.instance.root
        if is_rollback:
            new_state = InstallState.ROLLBACK_UNINSTALL
        else:
            new_state = InstallState.UPGRADING if inst else InstallState.UNINSTALLING
        set_state(root, uninst.name, uninst.version, new_state)
        step = self._run(uninst, "uninstall", request, out)
        if step is _Step.FAILED:
            out.errors.append(
                f"Failed to uninstall version {uninst.version} of package; uninstall status {step}"
            )
            if inst is not None:
                return self._execute_install(inst, uninst, is_rollback, request, out)
            set_state(root, uninst.name, uninst.version, InstallState.FAILED)
            return _Step.FAILED
        if step is _Step.REBOOT:
            out.info.append(f"Rebooting to finish uninstall of {uninst.name} {uninst.version}")
            return _Step.REBOOT
        out.info.append(f"Successfully uninstalled {uninst.name} {uninst.version}")
        if inst is not None:
            return self._execute_install(inst, uninst, is_rollback, request, out)
        self._cleanup(uninst)
        set_state(root, uninst.name, uninst.version, InstallState.NONE)
        return _Step.SUCCESS

    def _execute_update(
        self, inst: _Installer, old: _Installer, request: PackageRequest, out: _Output
    ) -> _Step:
        """In-place update: the new version's `update` + `validate`, no uninstall; on
        failure roll back like an install (new uninstall, old install)."""
        if inst.scripts.script("update") is None:
            # agent-semantics.md: a missing `update` fails an In-place update.
            out.errors.append(
                f"{inst.name} {inst.version} has no update script (update.sh or update.ps1): "
                "an In-place update needs one"
            )
            return _Step.FAILED
        root = self.instance.root
        set_state(root, inst.name, inst.version, InstallState.UPDATING)
        step = self._run(inst, "update", request, out)
        if step is _Step.SUCCESS:
            step = self._run(inst, "validate", request, out)
        if step is _Step.REBOOT:
            out.info.append(f"Rebooting to finish update of {inst.name} {inst.version}")
            return _Step.REBOOT
        if step is _Step.FAILED:
            out.errors.append(f"Failed to update package; update status {step}")
            return self._execute_uninstall(old, inst, True, request, out)
        self._cleanup(old)
        set_state(root, inst.name, inst.version, InstallState.INSTALLED)
        out.info.append(f"Successfully installed {inst.name} {inst.version}")
        return _Step.SUCCESS

    # -- Uninstall --------------------------------------------------------------------

    def _uninstall(self, request: PackageRequest, out: _Output) -> _Step:
        name = package_key(request.name)
        current = load_state(self.instance.root, name)
        installed = current.installed_version if current else ""
        if not installed or (request.version and request.version != installed):
            # agent-semantics.md: Uninstall of what is not installed succeeds.
            out.info.append(" ".join(filter(None, (name, request.version))) + " is not installed")
            return _Step.SUCCESS
        uninst = self._local_installer(name, installed)
        self._refuse_what_cannot_run(uninst)
        return self._execute_uninstall(None, uninst, False, request, out)

    # -- files ------------------------------------------------------------------------

    def _version_folder(self, name: str, version: str) -> Path:
        return host_path(self.instance.root, PACKAGES_DIR / name / version)

    def _local_installer(self, name: str, version: str) -> _Installer:
        folder = self._version_folder(name, version)
        try:
            return _Installer(name, version, discover(folder))
        except (OSError, PackageScriptError) as err:
            raise _Failed(f"installed version {version} of {name} is damaged: {err}") from err

    def _prepare(self, document: PackageDocument, out: _Output) -> _Installer:
        """Select, download, check and unpack the version's file (or reuse it if unpacked)."""
        name, version = package_key(document.name), document.version_name
        folder = self._version_folder(name, version)
        if folder.is_dir():
            try:
                return _Installer(name, version, discover(folder))
            except PackageScriptError:
                shutil.rmtree(folder)
        try:
            chosen = select_file(parse_manifest(document.content), *self.platform)
            data = self._download(document, chosen)
        except (ManifestError, PackageSourceError) as err:
            raise _Failed(str(err)) from err
        self._unpack(name, version, chosen.name, data, folder)
        try:
            scripts = discover(folder)
        except PackageScriptError as err:
            shutil.rmtree(folder)
            raise _Failed(str(err)) from err
        out.info.append(f"Downloaded and unpacked {chosen.name} for {name} {version}")
        return _Installer(name, version, scripts)

    def _download(self, document: PackageDocument, chosen: ManifestFile) -> bytes:
        """The file from the document's attachment URL; a sha256 mismatch (compared
        case-insensitively) is retried once after re-reading the manifest."""
        for attempt in (1, 2):
            url = document.attachments.get(chosen.name)
            if url is None:
                raise _Failed("Install attachments for package does not exist")
            data = self.source.download(url)
            actual = hashlib.sha256(data).hexdigest()
            if actual == chosen.sha256.lower():
                return data
            if attempt == 1:
                document = self.source.package_document(document.name, document.version_name)
                chosen = select_file(parse_manifest(document.content), *self.platform)
        raise _Failed(
            f"failed to download {chosen.name}: its sha256 {actual} does not match the "
            f"manifest's {chosen.sha256} (tried twice)"
        )

    def _unpack(self, name: str, version: str, file_name: str, data: bytes, folder: Path) -> None:
        download = host_path(self.instance.root, DOWNLOAD_DIR) / name / version / file_name
        download.parent.mkdir(parents=True, exist_ok=True)
        download.write_bytes(data)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            with zipfile.ZipFile(download) as archive:
                for member in archive.namelist():
                    path = PurePosixPath(member)
                    if path.is_absolute() or ".." in path.parts:
                        raise _Failed(f"{file_name}: refusing to unpack {member!r} outside")
                archive.extractall(folder)
        except zipfile.BadZipFile as err:
            shutil.rmtree(folder)
            raise _Failed(
                f"failed to extract package installer package {file_name}: {err}"
            ) from err
        finally:
            shutil.rmtree(download.parent, ignore_errors=True)

    def _cleanup(self, installer: _Installer) -> None:
        """cleanupAfterUninstall: the repository forgets a version once it is replaced."""
        shutil.rmtree(self._version_folder(installer.name, installer.version), ignore_errors=True)

    # -- scripts ----------------------------------------------------------------------

    def _refuse_what_cannot_run(self, installer: _Installer) -> None:
        """Windows scripts cannot run here, nor anything without bubblewrap: say so plainly,
        before any state changes."""
        if self.instance.spec.is_windows:
            raise _Failed(
                f"{installer.name} {installer.version} was downloaded, checked and unpacked, "
                "but this simulated Windows instance cannot run PowerShell scripts: "
                "nothing was installed"
            )
        if not self.sandbox.available:
            raise _Failed(
                "package scripts were not run: bubblewrap (bwrap) is not installed and "
                "scripts only run sandboxed (apt-get install bubblewrap): nothing was installed"
            )

    def _run(
        self, installer: _Installer, action: str, request: PackageRequest, out: _Output
    ) -> _Step:
        script = installer.scripts.script(action)
        if script is None:
            # A missing validate (or uninstall) is success (agent-semantics.md).
            return _Step.SUCCESS
        out.info.append(f"Initiating {installer.name} {installer.version} {action}")
        platform, platform_version, arch = self.platform
        environment = {
            "BWS_ACTION_NAME": action,
            "BWS_PLATFORM_NAME": platform,
            "BWS_PLATFORM_VERSION": platform_version,
            "BWS_ARCHITECTURE": arch,
            "BWS_INSTANCE_ID": self.instance.instance_id,
            "BWS_REGION": self.region,
            "BWS_ACCOUNT_ID": self.account_id,
            **request.additional_arguments,
        }
        workdir = PACKAGES_DIR / installer.name / installer.version
        run = self.sandbox.run(self.instance.root, workdir, script, environment)
        if not run.ran:
            out.errors.append(run.reason)
            return _Step.FAILED
        out.info.append(f"{action} output: {run.stdout.rstrip()}")
        if run.stderr.strip():
            out.errors.append(f"{action} error: {run.stderr.rstrip()}")
        if run.timed_out:
            out.timed_out = True
            out.errors.append(f"{action} timed out after {self.sandbox.timeout:g} seconds")
            return _Step.FAILED
        if run.limit:  # killed by a sandbox limit (or the fleet stopping): a failure
            out.errors.append(f"{action} was stopped: it {run.limit}")
            return _Step.FAILED
        if run.exit_code == 0:
            return _Step.SUCCESS
        if run.exit_code == REBOOT_EXIT_CODE:
            return _Step.REBOOT
        out.errors.append(f"{action} failed with exit code {run.exit_code}")
        return _Step.FAILED


def package_key(name: str) -> str:
    """The package's own name, also when given as the ARN of a package shared from another
    account (arn:aws:ssm:REGION:ACCOUNT:document/NAME): it names folders and state."""
    return name.rsplit("/", 1)[-1]


def _wanted(request: PackageRequest) -> str:
    """The document version to read: Install reads the requested (or default) version;
    Uninstall only needs the package to exist, so it reads the default."""
    return request.version if request.action == INSTALL else ""


def _check_request(request: PackageRequest) -> None:
    if request.action not in (INSTALL, UNINSTALL):
        raise RequestError(f"invalid input: action {request.action!r} must be Install or Uninstall")
    if not request.name:
        raise RequestError("invalid input: empty name field")
    for key in request.additional_arguments:
        # agent-semantics.md: every additionalArguments key must start with SSM_.
        if not key.startswith("SSM_"):
            raise RequestError(
                f"invalid input: additionalArguments key {key!r} must start with SSM_"
            )
