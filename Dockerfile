# syntax=docker/dockerfile:1
# PyTorch Playground, one file for two flavours:
#
#   docker build -t playground .                                     # cpu (default): CPU-only torch
#   docker build -t playground:cuda --build-arg FLAVOR=cuda .        # CUDA base image, CUDA torch
#
# Every version that decides what goes into the image is a build argument with a pinned default.
# For bit-for-bit rebuilds also pin the base images by digest (e.g. python:3.12-slim-bookworm@sha256:...).
#
# The builder stage makes a virtual environment at /opt/venv with docker/install.sh; the runtime
# stage copies only that environment in. tests/deploy/test_build.py runs this file's install RUN
# lines against a clean copy of the build context, so keep them calling docker/install.sh.

ARG FLAVOR=cpu
# The cpu flavour takes this Python from the official image; the cuda flavour installs the same
# minor version from Ubuntu 24.04 (which has 3.12), as NVIDIA's images carry no Python.
ARG PYTHON_VERSION=3.12
# Match the CUDA version of the torch wheels: PyPI's torch 2.14.1 is built for CUDA 13.0. torch
# bundles its own CUDA runtime; the base image adds NVIDIA's container settings and refuses to start
# on a host driver too old for that CUDA (13.0 needs driver 580 or later).
ARG CUDA_VERSION=13.0.1
# The base images themselves, for a build that cannot pull them (an offline or air-gapped builder
# with a locally made stand-in: see docker/smoke-test.sh) or that pins them by digest. The cpu base
# must have python3 with venv; the cuda base is NVIDIA's Ubuntu 24.04 image (Python comes from apt).
ARG CPU_BASE_IMAGE=python:${PYTHON_VERSION}-slim-bookworm
ARG CUDA_BASE_IMAGE=nvidia/cuda:${CUDA_VERSION}-base-ubuntu24.04

# ---- bases: what the builder and the runtime share, one per flavour ----------------------------

FROM ${CPU_BASE_IMAGE} AS base-cpu
# tini is the init (PID 1): it forwards SIGTERM to the server and reaps worker processes.
# DL3008 (pin apt versions) is ignored here and in base-cuda on purpose: the base image tag already
# fixes the distribution release, and its archive keeps only the newest point release of a package,
# so an exact pin would break the build weeks later. Pin the base image by digest to freeze these too.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*
ENV PYTHON=python3

FROM ${CUDA_BASE_IMAGE} AS base-cuda
ARG PYTHON_VERSION
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
        "python${PYTHON_VERSION}" "python${PYTHON_VERSION}-venv" \
    && rm -rf /var/lib/apt/lists/*
ENV PYTHON=python${PYTHON_VERSION}

# DL3006 (tag the image) does not apply: base-cpu and base-cuda are this file's own stages.
# hadolint ignore=DL3006
FROM base-${FLAVOR} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv

# ---- builder: the virtual environment ----------------------------------------------------------

FROM base AS builder
ARG FLAVOR
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
# Empty: the flavour's default (cpu: PyTorch's CPU wheel index; cuda: PyPI, whose Linux wheels are
# CUDA builds). Set it for another CUDA build, e.g. https://download.pytorch.org/whl/cu130.
ARG TORCH_INDEX_URL=
WORKDIR /src
# torch first and alone: this layer (hundreds of MB, GBs for cuda) survives source changes.
COPY docker/install.sh docker/constraints.txt docker/
RUN sh docker/install.sh torch
COPY . .
RUN sh docker/install.sh app

# ---- runtime -----------------------------------------------------------------------------------

FROM base AS runtime
ARG FLAVOR
LABEL org.opencontainers.image.title="PyTorch Playground" \
      org.opencontainers.image.description="Train the models of Deep Learning with PyTorch, chapters 5-7, in the browser (${FLAVOR})" \
      org.opencontainers.image.licenses="MIT"

# A fixed numeric uid, so volume ownership and Kubernetes' runAsNonRoot can rely on it.
RUN groupadd --system --gid 10001 playground \
    && useradd --system --uid 10001 --gid playground --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin playground \
    && mkdir -p /data \
    && chown playground:playground /data

COPY --from=builder /opt/venv /opt/venv
COPY docker/healthcheck.py /opt/playground/healthcheck.py

# All state (database, model files, dataset cache) lives under one volume. Mount datasets read-only
# elsewhere and point PLAYGROUND_DATA_DIR at them.
ENV PATH=/opt/venv/bin:$PATH \
    PLAYGROUND_HOME=/data
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/opt/playground/healthcheck.py"]

# One uvicorn process per container: the job queue and the live event streams live in it (see the
# README, "Deploy with Docker", for how to scale). The server handles SIGTERM itself: running jobs
# end as interrupted. Exec form, so tini passes the signal straight to it.
ENTRYPOINT ["tini", "--"]
CMD ["playground", "serve", "--host", "0.0.0.0", "--port", "8000"]
