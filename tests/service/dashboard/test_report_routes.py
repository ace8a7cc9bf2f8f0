"""GET /model/report and /models/{version}/report: the model card training wrote, verified."""

from __future__ import annotations

from pathlib import Path

from segmentation.artifact import REPORT_FILE
from tests.service.conftest import serve, serve_with_keys, settings_for
from tests.service.dashboard.sign_in import signed_in
from tests.service.helpers import CRM_KEY, assert_error


async def test_the_active_versions_report_is_the_file_training_wrote(models_dir: Path) -> None:
    async with serve(settings_for(models_dir)) as client:
        version = (await client.get("/model")).json()["model_version"]
        active = await client.get("/model/report")
        by_name = await client.get(f"/models/{version}/report")
    written = (models_dir / version / REPORT_FILE).read_bytes()
    for answer in (active, by_name):
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        assert answer.content == written
        # The card may show its own inline style and data: images, and load or run nothing.
        policy = answer.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy
        assert answer.headers["x-content-type-options"] == "nosniff"


async def test_a_candidates_report_is_served_by_its_name(
    candidate_models: tuple[Path, str, str],
) -> None:
    models, _, candidate = candidate_models
    async with serve(settings_for(models)) as client:
        answer = await client.get(f"/models/{candidate}/report")
    assert answer.status_code == 200
    assert answer.content == (models / candidate / REPORT_FILE).read_bytes()


async def test_an_unknown_or_invalid_version_gets_the_error_shape(models_dir: Path) -> None:
    async with serve(settings_for(models_dir)) as client:
        unknown = await client.get("/models/20990101T000000Z-00000000/report")
        invalid = await client.get("/models/.hidden/report")
    error = assert_error(unknown, 404, "version_not_found")
    assert "20990101T000000Z-00000000" in error["message"]
    assert_error(invalid, 422, "invalid_input")


async def test_a_report_changed_after_training_is_refused(models_dir: Path) -> None:
    async with serve(settings_for(models_dir)) as client:
        version = (await client.get("/model")).json()["model_version"]
        report = models_dir / version / REPORT_FILE
        report.write_text(report.read_text() + "<script>alert(1)</script>")
        answer = await client.get(f"/models/{version}/report")
        dashboard = await client.get(f"/dashboard/models/{version}/report")
    error = assert_error(answer, 409, "version_rejected")
    assert "does not match" in error["message"]
    assert_error(dashboard, 409, "version_rejected")


async def test_with_keys_the_api_route_needs_a_key_and_the_dashboard_a_session(
    models_dir: Path,
) -> None:
    async with serve_with_keys(models_dir) as client:
        version = (await client.get("/model")).json()["model_version"]
        with_key = await client.get(f"/models/{version}/report")
        without_key = await client.get(f"/models/{version}/report", headers={"X-API-Key": ""})
        client.headers.pop("X-API-Key")
        no_session = await client.get(f"/dashboard/models/{version}/report")
        cookie = await signed_in(client, CRM_KEY)
        with_session = await client.get(
            f"/dashboard/models/{version}/report", headers={"Cookie": cookie}
        )
    assert with_key.status_code == 200
    assert_error(without_key, 401, "unauthorized")
    assert no_session.status_code == 303
    assert with_session.status_code == 200
    assert with_session.content == with_key.content
