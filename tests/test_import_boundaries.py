"""The import rules of ``make lint`` (import-linter, configured in pyproject.toml) hold on
the tree, and each one fails the build when broken."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("segmentation", "training", "service")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the project's contracts, on the packages found in ``tree``."""
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def copy_of_the_packages(destination: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, destination / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return destination


def test_the_tree_keeps_every_import_rule(tmp_path: Path) -> None:
    result = lint_imports(copy_of_the_packages(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    contracts = len(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    )
    assert f"{contracts} kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "breach", "contract"),
    [
        (
            "segmentation/scoring.py",
            "import fastapi",
            "The core imports no web, database or plotting library, nor either side",
        ),
        (
            "training/job.py",
            "import service.config",
            "Training and the service never import each other",
        ),
        (
            "service/store/group_commit.py",
            "import service.api.routes.scoring",
            "The domain and the store know nothing of HTTP",
        ),
        (
            "service/scoring/customer_input.py",
            "import starlette.requests",
            "The domain and the store know nothing of HTTP",
        ),
        (
            "service/store/customer_store.py",
            "import service.customer_records",
            "The store never imports the domain",
        ),
        (
            "service/api/routes/segments.py",
            "import service.store.customer_store",
            "Routes reach the store only through the domain",
        ),
    ],
    ids=[
        "core-imports-fastapi",
        "training-imports-service",
        "store-imports-routes",
        "domain-imports-starlette",
        "store-imports-domain",
        "route-imports-store",
    ],
)
def test_a_deliberately_wrong_import_fails_the_lint(
    tmp_path: Path, module: str, breach: str, contract: str
) -> None:
    tree = copy_of_the_packages(tmp_path)
    with (tree / module).open("a") as source:
        source.write(f"\n{breach}  # a deliberate breach\n")
    result = lint_imports(tree)
    # One breach may break more than its own rule (the domain imports the core, say).
    assert result.returncode != 0
    assert f"{contract} BROKEN" in result.stdout
