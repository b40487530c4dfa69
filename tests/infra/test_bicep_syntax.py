"""Every .bicep file under infra/ parses with tree-sitter-bicep (no Bicep CLI is available here)."""

from __future__ import annotations

import pytest

from tests.infra.bicep_model import INFRA_DIR, MAIN_BICEP, bicep_file, bicep_files, parse_text, syntax_problems

MODULE_FILES = sorted(path.relative_to(INFRA_DIR).as_posix() for path in INFRA_DIR.rglob("*.bicep"))


def test_infra_has_the_entry_point_and_modules():
    assert MAIN_BICEP.is_file()
    assert len(MODULE_FILES) >= 10, MODULE_FILES


@pytest.mark.parametrize("relative", MODULE_FILES)
def test_file_parses_without_error_or_missing_nodes(relative: str):
    assert bicep_file(relative).syntax_problems() == []


def test_the_checker_reports_broken_bicep():
    broken = "resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name: \n}\nparam\n"
    assert syntax_problems(parse_text(broken))


def test_every_module_path_exists():
    for file in bicep_files():
        for module in file.modules():
            target = (file.path.parent / module.resource_type).resolve()
            assert target.is_file(), f"{file.relative}: module {module.name} points at missing {module.resource_type}"


def test_no_file_is_orphaned():
    used = {(file.path.parent / module.resource_type).resolve() for file in bicep_files() for module in file.modules()}
    orphans = [file.relative for file in bicep_files() if file.path != MAIN_BICEP and file.path.resolve() not in used]
    assert orphans == []


def test_main_deploys_at_subscription_scope():
    assert bicep_file("main.bicep").target_scope == "subscription"
