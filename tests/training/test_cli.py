"""The training command: one clear message and nothing written on bad input; else a summary."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from training.cli import main
from training.personas import default_playbook_path

ExportWriter = Callable[..., Path]
# Keep a run that validation wrongly let through short: three segments, two resamples.
QUICK = ["--k", "3", "--k-min", "3", "--k-max", "3", "--bootstrap", "2", "--quiet"]


@dataclass(frozen=True)
class BadInput:
    """How to build one kind of bad input, and what the message must say about it."""

    make: Callable[[ExportWriter, Path], list[str]]
    says: tuple[str, ...]


def _data(**change: object) -> Callable[[ExportWriter, Path], list[str]]:
    return lambda write, _: ["--data", str(write(**change))]


def _file(name: str, content: bytes) -> Callable[[ExportWriter, Path], list[str]]:
    def make(_: ExportWriter, folder: Path) -> list[str]:
        path = folder / name
        path.write_bytes(content)
        return ["--data", str(path)]

    return make


def _header_only(write: ExportWriter, _: Path) -> list[str]:
    return ["--data", str(write(n_rows=0))]


def _damaged_xlsx(_: ExportWriter, folder: Path) -> list[str]:
    path = folder / "export.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a workbook")
    return ["--data", str(path)]


def _playbook(text: str) -> Callable[[ExportWriter, Path], list[str]]:
    def make(_: ExportWriter, folder: Path) -> list[str]:
        path = folder / "playbook.toml"
        path.write_text(text, encoding="utf-8")
        return ["--playbook", str(path)]

    return make


_PLAYBOOK = default_playbook_path().read_text(encoding="utf-8")

BAD_INPUTS = {
    "missing_column": BadInput(
        _data(drop_column="Total_calls_made"), ("missing columns: total_calls_made",)
    ),
    "unknown_column": BadInput(_data(add_column=("Income", "52000")), ("unknown columns: income",)),
    "non_numeric_value": BadInput(
        _data(cell=(5, "Total_Credit_Cards", "two")),
        ("total_credit_cards: not a number at rows 5 ('two')",),
    ),
    "negative_value": BadInput(
        _data(cell=(7, "Total_visits_bank", "-1")),
        ("total_visits_bank: negative at rows 7 ('-1')",),
    ),
    "missing_value": BadInput(
        _data(cell=(3, "Total_visits_online", "")),
        ("total_visits_online: missing at rows 3 ('')",),
    ),
    "missing_customer_key": BadInput(
        _data(cell=(2, "Customer Key", "")), ("customer_key: missing at rows 2 ('')",)
    ),
    "non_finite_value": BadInput(
        _data(cell=(4, "Avg_Credit_Limit", "inf")),
        ("avg_credit_limit: not finite at rows 4 ('inf')",),
    ),
    "fractional_count": BadInput(
        _data(cell=(5, "Total_Credit_Cards", "2.5")),
        ("total_credit_cards: not a whole number at rows 5 ('2.5')",),
    ),
    "zero_credit_limit": BadInput(
        _data(cell=(9, "Avg_Credit_Limit", "0")),
        ("avg_credit_limit: zero (a credit limit must be positive) at rows 9 ('0')",),
    ),
    "empty_file": BadInput(_file("empty.csv", b""), ("empty.csv: the file is empty",)),
    "header_only_file": BadInput(_header_only, ("header but no customer rows",)),
    "fewer_rows_than_segments": BadInput(
        _data(n_rows=3), ("n_rows=3 should be >= 4", "3 segments")
    ),
    "nonexistent_data_path": BadInput(
        lambda _, folder: ["--data", str(folder / "nowhere.csv")],
        ("nowhere.csv: no such file",),
    ),
    "damaged_xlsx": BadInput(_damaged_xlsx, ("export.xlsx: cannot be read as .xlsx",)),
    "playbook_not_toml": BadInput(_playbook("min_fit = [\n"), ("not valid TOML",)),
    "playbook_missing": BadInput(
        lambda _, folder: ["--playbook", str(folder / "nowhere.toml")],
        ("nowhere.toml: no such file",),
    ),
    "playbook_unknown_feature": BadInput(
        _playbook(_PLAYBOOK.replace('total_calls_made = "high"', 'income = "high"')),
        ("persona #2 (support-seeking): signature names unknown feature 'income'",),
    ),
    "playbook_min_fit_not_number": BadInput(
        _playbook(_PLAYBOOK.replace("min_fit = 0.3", 'min_fit = "strict"')),
        ("min_fit='strict' should be a number",),
    ),
}


def _state(models_dir: Path) -> tuple[list[str], str | None]:
    """Every entry of the models directory (hidden ones too) and what `latest` says."""
    if not models_dir.exists():
        return [], None
    entries = sorted(str(path.relative_to(models_dir)) for path in models_dir.rglob("*"))
    latest = models_dir / "latest"
    return entries, latest.read_text() if latest.exists() else None


@pytest.mark.parametrize("case", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_cli_refuses_bad_input_with_one_message_and_nothing_written(
    case: BadInput,
    models_dir: Path,
    tmp_path: Path,
    write_export: ExportWriter,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = _state(models_dir)
    arguments = case.make(write_export, tmp_path)

    code = main([*arguments, "--models-dir", str(models_dir), *QUICK])

    out, err = capsys.readouterr()
    assert code != 0
    assert out == ""
    assert err.startswith("error: ")
    assert err.count("error:") == 1
    assert err.endswith("nothing was written.\n")
    assert "Traceback" not in err
    for fragment in case.says:
        assert fragment in err
    assert _state(models_dir) == before
    assert before[1] is not None


def test_cli_refuses_bad_input_without_creating_models_dir(
    tmp_path: Path, write_export: ExportWriter, capsys: pytest.CaptureFixture[str]
) -> None:
    models_dir = tmp_path / "models"
    data = write_export(cell=(1, "Total_calls_made", "lots"))

    code = main(["--data", str(data), "--models-dir", str(models_dir), *QUICK])

    assert code == 2
    assert "total_calls_made: not a number at rows 1 ('lots')" in capsys.readouterr().err
    assert not models_dir.exists()


def test_cli_refuses_k_min_above_k_max(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--models-dir", str(tmp_path / "models"), "--k-min", "5", "--k-max", "4"])

    assert code == 2
    assert capsys.readouterr().err.startswith("error: --k-min=5 should be <= --k-max=4")
    assert not (tmp_path / "models").exists()


def test_cli_accepts_duplicate_customer_keys(
    tmp_path: Path, write_export: ExportWriter, capsys: pytest.CaptureFixture[str]
) -> None:
    # Row 2 becomes a second record for the customer of row 1 (the export has 5 already).
    data = write_export(cell=(2, "Customer Key", "87073"))
    models_dir = tmp_path / "models"

    code = main(["--data", str(data), "--models-dir", str(models_dir), *QUICK])

    assert code == 0
    assert capsys.readouterr() == ("", "")  # --quiet: no summary, and no complaint
    version = (models_dir / "latest").read_text().strip()
    manifest = json.loads((models_dir / version / "manifest.json").read_text())
    assert manifest["data_quality"]["n_duplicate_keys"] == 6
    assert manifest["n_rows"] == 660


def test_cli_prints_summary_table_naming_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    models_dir = tmp_path / "models"

    code = main(["--models-dir", str(models_dir), "--bootstrap", "2", "--k-max", "3"])

    out, _ = capsys.readouterr()
    assert code == 0
    version = (models_dir / "latest").read_text().strip()
    manifest = json.loads((models_dir / version / "manifest.json").read_text())
    assert f"model {version}: k=3 (silhouette), silhouette 0.516" in out
    assert "660 customers" in out
    for segment in manifest["segments"]:
        row = next(line for line in out.splitlines() if segment["segment_id"] in line)
        assert segment["name"] in row
        assert str(segment["size"]) in row
    assert "written to" in out


def test_cli_synthetic_run_records_synthetic_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models_dir = tmp_path / "models"

    code = main(
        [
            *("--synthetic", "5000", "--models-dir", str(models_dir)),
            *("--k-max", "4", "--bootstrap", "2", "--quiet"),
        ]
    )

    assert code == 0
    version = (models_dir / "latest").read_text().strip()
    manifest = json.loads((models_dir / version / "manifest.json").read_text())
    assert manifest["data_source"].startswith("synthetic: 5000 customers, seed 0")
    assert manifest["n_rows"] == 5000
    assert (
        manifest["data_sha256"]
        != "d20d9222771134f858148bea1a144615a874e98551cf12f445ec83c217e91a83"
    )
    assert sum(segment["size"] for segment in manifest["segments"]) == 5000
    lines = (models_dir / version / "assignments.csv").read_text().splitlines()
    assert len(lines) == 5001


def test_cli_publishes_a_retrain_as_a_candidate_unless_told_to_promote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    models_dir = tmp_path / ("a-long-folder-name-" * 8) / "models"  # lines must not wrap
    quick = ["--models-dir", str(models_dir), "--bootstrap", "2", "--k", "3", "--k-max", "3"]
    assert main(quick) == 0
    first = (models_dir / "latest").read_text().strip()
    assert "active: `latest` names it" in capsys.readouterr().out

    assert main([*quick, "--seed", "1"]) == 0
    (written,) = [line for line in capsys.readouterr().out.splitlines() if "written to" in line]
    assert str(models_dir) in written  # whole, on one line, however long the path
    assert written.endswith("a candidate: `latest` is unchanged; compare it, then promote it "
                            "with POST /admin/promote")  # fmt: skip
    assert (models_dir / "latest").read_text().strip() == first

    assert main([*quick, "--seed", "2", "--promote"]) == 0
    assert (models_dir / "latest").read_text().strip() != first
    assert "active: `latest` names it" in capsys.readouterr().out


def test_the_summary_is_whole_outside_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert main(["--models-dir", str(tmp_path / "models"), "--bootstrap", "2", "--k-max", "3"]) == 0
    out, _ = capsys.readouterr()
    assert "…" not in out
    assert "high total_visits_online" in out
