# syntax=docker/dockerfile:1
# The ssm-gitops controller image: `docker build -t ssm-gitops .`
#
# Two stages on the same Debian bookworm Python 3.11 base: the builder makes a virtualenv
# from requirements.lock (every dependency pinned with its sha256; regenerate it with
# deploy/update-lock), the runtime stage copies only that virtualenv. The image runs as
# user 10001, writes only to /var/cache/ssm-gitops (the git clone and built artifacts)
# and /tmp, so it works with a read-only root filesystem when both are mounted
# (deploy/base/deployment.yaml mounts emptyDirs there). tini is PID 1: it forwards SIGTERM
# to the controller and reaps children, so `docker stop` and pod deletion end it at once.
#
# BASE names any Debian bookworm image with python3 and python3-venv (Python 3.11).
# tests/deploy/test_image.py builds this file against a base made with debootstrap.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/ssm-gitops/venv
# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY requirements.lock /tmp/requirements.lock
RUN /opt/ssm-gitops/venv/bin/pip install --require-hashes --only-binary=:all: \
        -r /tmp/requirements.lock
COPY . /src
# The project itself, without dependencies (all of them came from the lock file), then
# byte-compile everything now: the root filesystem is read-only at run time.
RUN /opt/ssm-gitops/venv/bin/pip install --no-deps --no-build-isolation /src \
    && /opt/ssm-gitops/venv/bin/pip uninstall -q -y setuptools wheel \
    && /opt/ssm-gitops/venv/bin/python -m compileall -q /opt/ssm-gitops/venv \
    && mkdir -p /src/sample-repo

FROM ${BASE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="ssm-gitops" \
      org.opencontainers.image.description="GitOps controller for AWS Systems Manager Distributor packages and State Manager associations" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="docs/deploy.md"
# tini (Debian's package) as PID 1: a Python process that is PID 1 would ignore SIGTERM.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    && groupadd --gid 10001 ssm-gitops \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin ssm-gitops \
    && mkdir -p /var/cache/ssm-gitops \
    && chown 10001:10001 /var/cache/ssm-gitops
COPY --from=builder /opt/ssm-gitops/venv /opt/ssm-gitops/venv
# The example repository `ssm-gitops demo` reconciles (read-only; the demo copies it).
COPY --from=builder /src/sample-repo /opt/ssm-gitops/sample-repo
ENV PATH=/opt/ssm-gitops/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp \
    SSM_GITOPS_CACHE_DIR=/var/cache/ssm-gitops \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /opt/ssm-gitops
USER 10001:10001
EXPOSE 8080
VOLUME ["/var/cache/ssm-gitops"]
ENTRYPOINT ["/usr/bin/tini", "--", "ssm-gitops"]
CMD ["run"]
