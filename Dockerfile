# Customer segmentation: one image for both the offline training job and the API.
#
#   docker build -t customer-segmentation .
#   docker run --rm -v models:/models customer-segmentation python -m training --models-dir /models
#   docker run --rm -p 8000:8000 -v models:/models customer-segmentation
#
# Two stages so that whatever installing needs (pip, setuptools, wheel, a build
# backend, any compiler a future dependency might want) stays in the builder and
# the image that runs in production carries only the interpreter and the venv.
# Base images are referenced by tag, not digest: we take Debian/Python security
# fixes on every rebuild; pin a digest in the release pipeline if reproducible
# bytes are needed.

# --------------------------------------------------------------------------- #
# builder: resolve and install the project into a self-contained venv
# --------------------------------------------------------------------------- #
FROM python:3.11-slim AS builder

# No pip cache (nothing in the builder's layers that the runtime could
# inherit by mistake, and a smaller build cache); no version-check call.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A venv at a fixed path is the unit we copy into the final stage: everything
# the project needs lives under /opt/venv and nothing under /usr/local changes.
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Only what the build needs: the metadata (pyproject.toml names README.md as
# the long description, so the build fails without it) and the three packages.
# Tests, benchmarks, local models and data never enter the build context
# (see .dockerignore) nor this stage.
COPY pyproject.toml README.md ./
COPY segmentation/ segmentation/
COPY training/ training/
COPY service/ service/

# A regular, non-editable install: the code is copied into site-packages, so
# /src can be thrown away with this stage. Every dependency ships manylinux
# wheels for python:3.11-slim, so no compiler is installed here either; if one
# is ever needed, apt-get it in THIS stage only. pip byte-compiles what it
# installs, so the read-only runtime never needs to write .pyc files.
RUN pip install .

# --------------------------------------------------------------------------- #
# runtime: the interpreter, the venv, an unprivileged user; nothing else
# --------------------------------------------------------------------------- #
FROM python:3.11-slim AS runtime

# Same base image as the builder, so the venv's python symlink
# (/opt/venv/bin/python -> /usr/local/bin/python3.11) resolves here too.
COPY --from=builder /opt/venv /opt/venv

# A fixed uid/gid (10001) so that files written to volumes (models, data) have
# a predictable owner on the host and across rebuilds, and so that Kubernetes'
# runAsNonRoot can verify it numerically. A home directory gives matplotlib
# (used by training for the model card) a writable config/cache directory.
#
# /models is created here, owned by app: when an empty named volume is first
# mounted on it, Docker copies this directory's ownership into the volume, so
# the training job (running as app) can write to it.
# /app/data is where the default SQLite store (DATABASE_URL unset) is created,
# relative to the working directory; it must be writable by app as well.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app \
        --shell /usr/sbin/nologin app \
    && mkdir -p /models /app/data \
    && chown app:app /models /app /app/data

WORKDIR /app

# MODELS_DIR: where training writes and the service reads (the volume).
# PATH: the venv first, so `python` is the venv's interpreter with the project.
# PYTHONUNBUFFERED: logs reach `docker logs` immediately, not when a buffer fills.
# NUMBA_CACHE_DIR: the compiled scoring kernels; site-packages is not writable by app.
ENV MODELS_DIR=/models \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/home/app/.cache/numba

USER app

# Compile the scoring kernels once, into the image, so no container pays it at start.
RUN python -c "from segmentation.kernels import warm_up; warm_up()"

EXPOSE 8000

# /health only says the process is alive (the orchestrator's liveness signal);
# readiness (/ready, a verified model loaded) is checked by compose / k8s.
# slim has neither curl nor wget, so the probe is Python's urllib: urlopen
# raises on a connection error or any non-2xx status, which exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

# Exec form: python is PID 1 and receives SIGTERM directly, so uvicorn can
# drain in-flight requests on `docker stop`. Add `--workers N` to scale within
# a container; every worker follows MODELS_DIR/latest on its own.
CMD ["python", "-m", "service", "--host", "0.0.0.0", "--port", "8000"]
