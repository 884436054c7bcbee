"""load_repository on valid repositories: the models later stages rely on."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.repository import (
    Association,
    Package,
    SpecErrors,
    load_repository,
    reconcile_disabled,
)
from tests.repository.conftest import SAMPLE_REPO, RepoWriter, package_files, package_yaml


def test_the_sample_repository_loads() -> None:
    repo = load_repository(SAMPLE_REPO)
    names = {package.name for package in repo.packages}
    assert names == {"datadog-agent", "ops-toolkit", "metrics-exporter"}
    assert all(len(package.versions) >= 2 for package in repo.packages)
    assert len(repo.associations) >= 4
    assert repo.settings is not None
    assert repo.settings.artifacts.bucket == "ssm-gitops-demo-artifacts"
    assert repo.settings.regions == ("us-east-1",)
    assert repo.settings.prune.enabled and repo.settings.prune.max_deletes == 5
    assert repo.root == SAMPLE_REPO.resolve()


def test_package_fields_sources_and_positions() -> None:
    repo = load_repository(SAMPLE_REPO, display_prefix="")
    datadog = repo.package("datadog-agent")
    assert datadog is not None
    assert datadog.default_version == "6.9.0"
    assert datadog.share_with == ("111122223333", "444455556666")
    assert datadog.tags == {"team": "observability", "cost-center": "4711"}
    assert (datadog.path, datadog.line) == ("packages/datadog-agent.yaml", 7)
    version = datadog.version("6.9.0")
    assert version is not None
    first = version.files[0]
    assert (first.platform, first.platform_version, first.arch) == ("amazon", "2", "x86_64")
    assert first.source == SAMPLE_REPO.resolve() / "packages/datadog-agent/6.9.0/linux"
    assert first.installer is None
    assert first.line == 29  # after the rollout block
    windows = version.files[2]
    assert windows.platform_version == "_any"  # omitted platformVersion means _any
    exporter = repo.package("metrics-exporter")
    assert exporter is not None
    installer = exporter.versions[0].files[0].installer
    assert installer is not None and installer.name == "metrics-exporter_1.6.1_all.deb"


def test_association_defaults_are_ssm_defaults() -> None:
    repo = load_repository(SAMPLE_REPO)
    by_name = {association.name: association for association in repo.associations}
    exporter = by_name["metrics-exporter-web"]
    assert exporter.action == "Install"
    assert exporter.installation_type == "Uninstall and reinstall"
    assert exporter.version is None  # follow the package's default version
    assert exporter.additional_arguments == {}
    assert exporter.output is None
    assert exporter.apply_only_at_cron_interval is False
    prod = by_name["datadog-agent-prod"]
    assert prod.targets[0].key == "tag:env" and prod.targets[0].values == ("prod",)
    assert (prod.schedule, prod.max_concurrency, prod.max_errors) == ("rate(1 day)", "10%", "5%")
    assert prod.additional_arguments["SSM_DD_SITE"] == "datadoghq.eu"
    assert by_name["ops-toolkit-everywhere"].installation_type == "In-place update"


def test_models_are_frozen_and_compare_without_their_position() -> None:
    repo = load_repository(SAMPLE_REPO)
    package = repo.packages[0]
    with pytest.raises(Exception, match="frozen"):
        package.name = "other"  # type: ignore[misc]
    moved = package.model_copy(update={"path": "elsewhere.yaml", "line": 99})
    assert moved == package and hash(moved) == hash(package)
    renamed = package.model_copy(update={"name": "other-name"})
    assert renamed != package


def test_models_reject_unknown_fields_when_built_in_code() -> None:
    with pytest.raises(Exception, match="extra"):
        Association(name="x", package="p", targets=(), colour="red")  # type: ignore[call-arg]


def test_reconcile_disabled_annotation(write_repo: RepoWriter) -> None:
    text = package_yaml().replace(
        "metadata: {name: demo-agent}",
        "metadata: {name: demo-agent, annotations: {ssm-gitops/reconcile: disabled}}",
    )
    repo = load_repository(write_repo({"p.yaml": text, **package_files()}))
    assert reconcile_disabled(repo.packages[0])
    assert not reconcile_disabled(load_repository(SAMPLE_REPO).packages[0])


def test_several_documents_per_file_and_any_layout(write_repo: RepoWriter) -> None:
    text = package_yaml("first-agent") + "---\n" + package_yaml("second-agent") + "---\n"
    root = write_repo({"deep/down/all.yml": text.replace("pkg/", "../../pkg/"), **package_files()})
    repo = load_repository(root)
    assert [package.name for package in repo.packages] == ["first-agent", "second-agent"]
    assert repo.packages[1].line == 11


def test_yaml_inside_a_source_folder_is_payload_not_a_document(write_repo: RepoWriter) -> None:
    root = write_repo(
        {"p.yaml": package_yaml(), **package_files(), "pkg/1.0/conf/agent.yaml": "api_key: x\n"}
    )
    assert load_repository(root).packages[0].name == "demo-agent"


def test_hidden_folders_are_skipped(write_repo: RepoWriter) -> None:
    root = write_repo({"p.yaml": package_yaml(), **package_files(), ".github/ci.yaml": "on: push"})
    assert len(load_repository(root).packages) == 1


def test_an_empty_repository_is_valid_and_empty(tmp_path: Path) -> None:
    repo = load_repository(tmp_path)
    assert (repo.packages, repo.associations, repo.settings) == ((), (), None)


def test_a_missing_folder_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(SpecErrors) as caught:
        load_repository(tmp_path / "nope")
    assert len(caught.value.errors) == 1
    assert "no such directory" in str(caught.value)


def test_paths_are_shown_relative_to_the_current_directory(
    write_repo: RepoWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_repo({"p.yaml": package_yaml().replace("amazon", "amiga"), **package_files()})
    monkeypatch.chdir(root.parent)
    with pytest.raises(SpecErrors) as caught:
        load_repository(root)
    assert str(caught.value).startswith("repo/p.yaml:9:")
    with pytest.raises(SpecErrors) as caught:
        load_repository(root, display_prefix="git:")
    assert str(caught.value).startswith("git:p.yaml:9:")
    elsewhere = root.parent / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not below the current directory: absolute
    with pytest.raises(SpecErrors) as caught:
        load_repository(root)
    assert str(caught.value).startswith(str(root / "p.yaml") + ":9:")


def test_in_place_update_is_accepted_when_every_file_has_update_script(
    write_repo: RepoWriter,
) -> None:
    files = {**package_files(), "pkg/1.0/update.sh": "#!/bin/sh\n"}
    association = (
        "apiVersion: ssm-gitops/v1\nkind: Association\nmetadata: {name: demo-update}\n"
        "spec:\n  package: demo-agent\n  installationType: In-place update\n"
        "  targets: [{key: InstanceIds, values: ['*']}]\n"
    )
    repo = load_repository(write_repo({"p.yaml": package_yaml(), "a.yaml": association, **files}))
    assert repo.associations[0].installation_type == "In-place update"


def test_an_association_may_name_a_shared_package_by_arn(write_repo: RepoWriter) -> None:
    association = (
        "apiVersion: ssm-gitops/v1\nkind: Association\nmetadata: {name: shared-agent}\n"
        "spec:\n  package: arn:aws:ssm:us-east-1:111122223333:document/shared-agent\n"
        "  targets: [{key: 'tag:env', values: [prod]}]\n"
    )
    repo = load_repository(write_repo({"a.yaml": association}))
    assert repo.associations[0].package.startswith("arn:aws:ssm:")


def test_package_model_can_be_built_in_code_for_other_stages() -> None:
    package = Package(name="demo-agent", versions=())
    assert package.default_version is None and package.share_with == ()


def test_loaded_models_equal_validated_ones() -> None:
    # The loader builds models without re-validating them; they must be the same values.
    repo = load_repository(SAMPLE_REPO)
    for package in repo.packages:
        again = Package.model_validate(package.model_dump())
        assert again == package
        assert again.model_dump() == package.model_dump()
        assert repr(again) == repr(package)
    for association in repo.associations:
        assert Association.model_validate(association.model_dump()) == association


def test_a_package_whose_source_folder_holds_its_own_yaml_is_kept(
    write_repo: RepoWriter,
) -> None:
    text = package_yaml().replace("source: pkg/1.0", "source: .")
    root = write_repo({"pkg/1.0/package.yaml": text, **package_files()})
    repo = load_repository(root)
    assert [package.name for package in repo.packages] == ["demo-agent"]
    assert repo.packages[0].versions[0].files[0].source == (root / "pkg/1.0").resolve()


def test_a_broken_document_inside_a_source_folder_is_still_reported(
    write_repo: RepoWriter,
) -> None:
    files = {"p.yaml": package_yaml(), **package_files()}
    files["pkg/1.0/extra.yaml"] = "apiVersion: ssm-gitops/v1\nkind: Package\n"
    with pytest.raises(SpecErrors) as caught:
        load_repository(write_repo(files), display_prefix="")
    assert [str(error) for error in caught.value.errors] == [
        "pkg/1.0/extra.yaml:1:1: document: missing required field 'metadata': add it",
        "pkg/1.0/extra.yaml:1:1: document: missing required field 'spec': add it",
    ]


def test_a_missing_folder_is_named_as_given_even_with_a_prefix(tmp_path: Path) -> None:
    with pytest.raises(SpecErrors) as caught:
        load_repository(tmp_path / "nope", display_prefix="")
    assert (
        str(caught.value) == f"{tmp_path / 'nope'}: no such directory: give the repository folder"
    )


def test_the_resources_are_the_yaml_models_so_each_field_is_declared_once() -> None:
    """Issue 12: a second, hand-copied layer of models let a field or default drift apart."""
    from controller.repository import models

    for resource, spec, metadata in (
        (Package, models.PackageSpec, models.PackageMetadata),
        (Association, models.AssociationSpec, models.AssociationMetadata),
        (models.Settings, models.SettingsSpec, models.Metadata),
    ):
        assert issubclass(resource, spec) and issubclass(resource, metadata)
        declared = set(spec.model_fields) | set(metadata.model_fields) | {"path", "line"}
        assert set(resource.model_fields) == declared
    assert issubclass(models.PackageVersion, models.VersionSpec)
    assert issubclass(models.PackageFile, models.FileSpec)
