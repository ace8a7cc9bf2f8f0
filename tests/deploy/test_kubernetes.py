"""The Kubernetes manifests in deploy/kubernetes/: valid for the API server, and wired right.

Every document is checked against the Kubernetes OpenAPI schemas that kubernetes-validate
bundles (offline, strict: an unknown or misspelt field fails), for the oldest version
these manifests claim and for the newest bundled. The rest checks what a schema cannot:
that the pieces point at each other and at what the service and the image really do.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from service.config import Settings

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
KUSTOMIZATION = MANIFESTS / "kustomization.yaml"
EXAMPLE_SECRET = MANIFESTS / "secret.example.yaml"
TRAINING_JOB = MANIFESTS / "training-job.yaml"

OLDEST_SUPPORTED = "1.30"
"""The oldest Kubernetes these manifests claim: every field they use exists there."""

# Measured (README, "Tests and benchmarks"), in MB of 10^6 bytes: one worker once ready
# and at its peak over every benchmark case, and the supervising process of --workers N.
WORKER_READY_MB = 224
WORKER_PEAK_MB = 492
SUPERVISOR_MB = 70
PEAK_MARGIN = Decimal("1.1")
"""The peak was measured on one machine, in one run: a tenth to spare before the OOM kill."""

SECRETS_THE_PODS_CANNOT_RUN_WITHOUT = frozenset({"DATABASE_URL", "API_KEYS"})
"""No store (SQLite on a read-only filesystem is no store) / an API open to the cluster."""


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def manifest_files() -> list[Path]:
    return sorted(path for path in MANIFESTS.glob("*.yaml") if path != KUSTOMIZATION)


def documents() -> list[tuple[str, dict[str, Any]]]:
    """(file name, document) for every non-empty document of every manifest file."""
    found = []
    for path in manifest_files():
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document is not None:
                assert isinstance(document, dict), f"{path.name}: a document is not a mapping"
                found.append((path.name, document))
    return found


def manifest(kind: str) -> dict[str, Any]:
    found = [document for _, document in documents() if document.get("kind") == kind]
    assert len(found) == 1, f"{len(found)} manifests of kind {kind}"
    return found[0]


def pod_spec(kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = manifest(kind)["spec"]["template"]["spec"]
    return spec


def pod_labels(kind: str) -> dict[str, str]:
    labels: dict[str, str] = manifest(kind)["spec"]["template"]["metadata"]["labels"]
    return labels


def container(kind: str) -> dict[str, Any]:
    (only,) = pod_spec(kind)["containers"]
    assert isinstance(only, dict)
    return only


def env(kind: str) -> dict[str, dict[str, Any]]:
    """Each variable of the container, by name, as its manifest entry."""
    return {entry["name"]: entry for entry in container(kind).get("env") or []}


def secret_refs(kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: entry["valueFrom"]["secretKeyRef"]
        for name, entry in env(kind).items()
        if "secretKeyRef" in entry.get("valueFrom", {})
    }


def example_secret() -> dict[str, Any]:
    (document,) = yaml.safe_load_all(EXAMPLE_SECRET.read_text(encoding="utf-8"))
    assert isinstance(document, dict) and document["kind"] == "Secret"
    return document


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def quantity(value: str | int) -> Decimal:
    """A Kubernetes quantity (``600Mi``, ``1000m``, ``2``) as a plain number."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m|k|M|G|Ki|Mi|Gi)?", str(value))
    assert match, f"not a quantity: {value!r}"
    scale = {
        None: Decimal(1),
        "m": Decimal("0.001"),
        "k": Decimal(10**3),
        "M": Decimal(10**6),
        "G": Decimal(10**9),
        "Ki": Decimal(2**10),
        "Mi": Decimal(2**20),
        "Gi": Decimal(2**30),
    }[match.group(2)]
    return Decimal(match.group(1)) * scale


def option(command: list[str], name: str) -> str:
    assert name in command, f"{name} missing from {command}"
    return command[command.index(name) + 1]


def writable_mounts(kind: str) -> list[str]:
    """Mount paths the container can write: emptyDirs and read-write claims."""
    volumes = {volume["name"]: volume for volume in pod_spec(kind)["volumes"]}
    paths = []
    for mount in container(kind)["volumeMounts"]:
        volume = volumes[mount["name"]]
        writable_kind = "emptyDir" in volume or "persistentVolumeClaim" in volume
        if writable_kind and not mount.get("readOnly", False):
            paths.append(mount["mountPath"])
    return paths


def is_under(path: str, parents: list[str]) -> bool:
    return any(path == parent or path.startswith(parent.rstrip("/") + "/") for parent in parents)


def dockerfile_uid() -> int:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    match = re.search(r"useradd\b[^\n]*?--uid (\d+)", text)
    assert match, "the Dockerfile creates no user with a fixed uid"
    return int(match.group(1))


def graceful_shutdown_seconds() -> int:
    """What `python -m service` gives uvicorn to drain requests after SIGTERM."""
    text = (ROOT / "service" / "__main__.py").read_text(encoding="utf-8")
    match = re.search(r"timeout_graceful_shutdown=(\d+)", text)
    assert match, "python -m service sets no graceful shutdown time"
    return int(match.group(1))


def settings_env_names() -> set[str]:
    prefix = str(Settings.model_config.get("env_prefix") or "")
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}


# --------------------------------------------------------------------------- #
# the schemas
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("version", [OLDEST_SUPPORTED, kubernetes_validate.latest_version()])
@pytest.mark.parametrize(
    ("file_name", "document"),
    documents(),
    ids=[f"{name}:{doc.get('kind')}" for name, doc in documents()],
)
def test_manifest_is_valid_for_the_api_server_when_validated_strictly(
    file_name: str, document: dict[str, Any], version: str
) -> None:
    # Raises for a field the schema does not have, a wrong type, or an unknown kind.
    kubernetes_validate.validate(document, version, strict=True)


def test_every_kind_the_deployment_needs_is_present_when_listed() -> None:
    kinds = sorted(document["kind"] for _, document in documents())
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "Job",
            "PersistentVolumeClaim",
            "PodDisruptionBudget",
            "Secret",
            "Service",
        ]
    )


def test_kustomization_applies_every_manifest_but_the_secret_and_the_job_when_listed() -> None:
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text(encoding="utf-8"))
    listed = set(kustomization["resources"])
    # The example's placeholders must never be applied; training runs on purpose only.
    expected = {path.name for path in manifest_files()} - {EXAMPLE_SECRET.name, TRAINING_JOB.name}
    assert listed == expected


# --------------------------------------------------------------------------- #
# the API's Deployment
# --------------------------------------------------------------------------- #


def test_deployment_runs_the_service_with_two_workers_on_its_port_when_started() -> None:
    api = container("Deployment")
    command = api["command"]
    assert command[:3] == ["python", "-m", "service"], command
    assert option(command, "--host") == "0.0.0.0"
    assert int(option(command, "--workers")) == 2
    ports = {port["name"]: port["containerPort"] for port in api["ports"]}
    assert ports == {"http": int(option(command, "--port"))}
    assert api["image"] == "customer-segmentation:1.0"


def test_probes_check_ready_and_health_on_the_served_port_when_running() -> None:
    api = container("Deployment")
    served = {"http", api["ports"][0]["containerPort"]}
    expected_paths = {
        "startupProbe": "/ready",
        "readinessProbe": "/ready",
        "livenessProbe": "/health",
    }
    for probe_name, path in expected_paths.items():
        probe = api[probe_name]
        assert probe["httpGet"]["path"] == path, probe_name
        assert probe["httpGet"]["port"] in served, probe_name
        assert probe["timeoutSeconds"] < probe.get("periodSeconds", 10), probe_name
    startup = api["startupProbe"]
    # Start-up to /ready took 1.7 s measured; the first start also compiles the kernels.
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert 45 <= budget <= 120, f"start-up budget {budget} s"


def test_pods_run_as_the_image_user_with_a_read_only_root_when_started() -> None:
    for kind in ("Deployment", "Job"):
        pod = pod_spec(kind)["securityContext"]
        assert pod["runAsNonRoot"] is True, kind
        assert pod["runAsUser"] == pod["runAsGroup"] == dockerfile_uid(), kind
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", kind
        own = container(kind)["securityContext"]
        assert own["readOnlyRootFilesystem"] is True, kind
        assert own["allowPrivilegeEscalation"] is False, kind
        assert own["capabilities"]["drop"] == ["ALL"], kind
        assert "add" not in own["capabilities"], kind
        assert pod_spec(kind)["automountServiceAccountToken"] is False, kind


def test_every_path_the_process_writes_is_a_volume_when_root_is_read_only() -> None:
    for kind in ("Deployment", "Job"):
        writable = writable_mounts(kind)
        # tempfile: the workers' shared state and metrics directories, joblib, matplotlib.
        assert "/tmp" in writable, kind
        # numba refuses a cache directory it cannot write, and the import then fails.
        numba_cache = env(kind)["NUMBA_CACHE_DIR"]["value"]
        assert is_under(numba_cache, writable), f"{kind}: NUMBA_CACHE_DIR={numba_cache}"
    mpl_config = env("Job")["MPLCONFIGDIR"]["value"]
    assert is_under(mpl_config, writable_mounts("Job")), f"MPLCONFIGDIR={mpl_config}"


def test_resources_cover_the_measured_memory_of_every_worker_when_scheduled() -> None:
    api = container("Deployment")
    workers = int(option(api["command"], "--workers"))
    requests, limits = api["resources"]["requests"], api["resources"]["limits"]
    mb = Decimal(10**6)
    # The request holds the workers at rest; the limit holds all of them at their peak.
    assert quantity(requests["memory"]) / mb >= workers * WORKER_READY_MB + SUPERVISOR_MB
    peak = workers * WORKER_PEAK_MB + SUPERVISOR_MB
    assert quantity(limits["memory"]) / mb >= peak * PEAK_MARGIN
    # Scoring is CPU-bound: a core per worker at full load, half of that guaranteed.
    assert quantity(requests["cpu"]) >= workers / 2
    assert quantity(limits["cpu"]) >= workers
    for resource in ("cpu", "memory"):
        assert quantity(requests[resource]) <= quantity(limits[resource]), resource


def test_termination_grace_outlasts_the_graceful_shutdown_when_stopped() -> None:
    pod = pod_spec("Deployment")
    pause = container("Deployment")["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep", pause
    needed = int(pause[1]) + graceful_shutdown_seconds()
    assert pod["terminationGracePeriodSeconds"] > needed


def test_models_claim_is_shared_read_write_at_models_dir_when_mounted() -> None:
    claim = manifest("PersistentVolumeClaim")
    # Pods on several nodes and the training Job mount it at once.
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for kind in ("Deployment", "Job"):
        volumes = {volume["name"]: volume for volume in pod_spec(kind)["volumes"]}
        (mount,) = [m for m in container(kind)["volumeMounts"] if m["mountPath"] == "/models"]
        source = volumes[mount["name"]]["persistentVolumeClaim"]
        assert source["claimName"] == claim["metadata"]["name"], kind
        # The API repoints `latest` (/admin/reload, /admin/promote); the Job writes versions.
        assert not mount.get("readOnly", False) and not source.get("readOnly", False), kind
        assert env(kind)["MODELS_DIR"]["value"] == "/models", kind
    assert option(container("Job")["command"], "--models-dir") == "/models"
    assert container("Job")["command"][:3] == ["python", "-m", "training"]


def test_hpa_has_the_deployment_own_its_replicas_when_scaling() -> None:
    deployment = manifest("Deployment")
    # A fixed count here would reset the autoscaler's choice on every apply.
    assert "replicas" not in deployment["spec"]
    hpa = manifest("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"],
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}


def test_selectors_pick_exactly_the_api_pods_when_matched() -> None:
    deployment = manifest("Deployment")
    api_pods, training_pods = pod_labels("Deployment"), pod_labels("Job")
    own = deployment["spec"]["selector"]["matchLabels"]
    assert selects(own, api_pods)
    budget = manifest("PodDisruptionBudget")["spec"]
    assert budget.get("maxUnavailable") == 1 or budget.get("minAvailable", 0) >= 2
    for name, selector in (
        ("Deployment", own),
        ("PodDisruptionBudget", budget["selector"]["matchLabels"]),
        ("Service", manifest("Service")["spec"]["selector"]),
    ):
        assert selects(selector, api_pods), f"{name} does not select the API pods"
        # A training pod in the Service would get requests; in the budget, block drains.
        assert not selects(selector, training_pods), f"{name} selects the training pods"


def test_service_sends_port_80_to_the_api_container_when_called() -> None:
    service = manifest("Service")
    assert service["spec"]["type"] == "ClusterIP"
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80
    container_ports = {p["name"]: p["containerPort"] for p in container("Deployment")["ports"]}
    target = port["targetPort"]
    assert container_ports.get(target, target) == 8000


# --------------------------------------------------------------------------- #
# settings and secrets
# --------------------------------------------------------------------------- #


def test_secret_refs_name_keys_of_the_example_secret_when_resolved() -> None:
    secret = example_secret()
    keys = set(secret["stringData"])
    referenced: set[str] = set()
    for kind in ("Deployment", "Job"):
        for variable, ref in secret_refs(kind).items():
            assert ref["name"] == secret["metadata"]["name"], (kind, variable)
            assert ref["key"] == variable, (kind, variable)
            assert ref["key"] in keys, f"{kind}: {ref['key']} is not in the example Secret"
            referenced.add(ref["key"])
    assert keys == referenced, f"example keys nothing reads: {sorted(keys - referenced)}"
    assert keys <= settings_env_names(), sorted(keys - settings_env_names())


def test_only_what_the_pods_cannot_run_without_is_required_when_referenced() -> None:
    refs = secret_refs("Deployment")
    assert {"DATABASE_URL", "REDIS_URL", "API_KEYS", "ADMIN_API_KEY"} <= set(refs)
    assert {"MODEL_SIGNING_KEY"} <= set(refs) & set(secret_refs("Job"))
    for variable, ref in refs.items():
        required = variable in SECRETS_THE_PODS_CANNOT_RUN_WITHOUT
        assert ref.get("optional", False) is not required, variable


def test_example_secret_holds_only_placeholders_when_read() -> None:
    for key, value in example_secret()["stringData"].items():
        assert value == "" or "CHANGE-ME" in value, f"{key} looks like a real value"


def test_config_map_sets_only_settings_the_service_reads_when_loaded() -> None:
    config_map = manifest("ConfigMap")
    assert set(config_map["data"]) <= settings_env_names()
    (source,) = container("Deployment")["envFrom"]
    assert source["configMapRef"]["name"] == config_map["metadata"]["name"]
    # Settings come from the manifests alone, not from Service links.
    assert pod_spec("Deployment")["enableServiceLinks"] is False
