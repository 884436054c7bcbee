# syntax=docker/dockerfile:1
# The ssm-gitops controller image: `docker build -t ssm-gitops .` (target `controller`, the
# default), and a demo image with the embedded local AWS: `docker build --target demo .`
#
# Two stages on the same Debian bookworm Python 3.11 base: the builder makes a virtualenv
# from requirements.lock (every dependency pinned with its sha256; regenerate it with
# deploy/update-lock), the runtime stage copies only that virtualenv. The controller image
# carries no AWS emulator: moto is the `local` extra, installed only in the `demo` target
# (from deploy/requirements-demo.lock, hashed the same way). The image runs as
# user 10001, writes only to /var/cache/ssm-gitops (the git clone and built artifacts)
# and /tmp, so it works with a read-only root filesystem when both are mounted
# (deploy/base/deployment.yaml mounts emptyDirs there). tini is PID 1: it forwards SIGTERM
# to the controller and reaps children, so `docker stop` and pod deletion end it at once.
#
# BASE names any Debian bookworm image with python3 and python3-venv (Python 3.11).
# tests/deploy/test_image.py builds this file against a base made with debootstrap.
# Pins (refresh them with deploy/update-pins): BASE should carry its digest
# (`name@sha256:...`); update-pins writes it where a registry is reachable. tini is Debian
# bookworm's package, pinned by version and by the sha256 of its .deb for each architecture.
ARG BASE=python:3.11-slim-bookworm
ARG TINI_VERSION=0.19.0-1+b3
ARG TINI_SHA256_AMD64=7d1947665fa40e55f218fefad773dc6de66458d0b39eaa292cdcadfc7c996632
ARG TINI_SHA256_ARM64=335dee1e36c0bf61f11c9fe9740012966a3183bd50405b73ed19477293c28f7f

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

FROM ${BASE} AS controller
ARG TINI_VERSION
ARG TINI_SHA256_AMD64
ARG TINI_SHA256_ARM64
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="ssm-gitops" \
      org.opencontainers.image.description="GitOps controller for AWS Systems Manager Distributor packages and State Manager associations" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="docs/deploy.md"
# tini (Debian's package) as PID 1: a Python process that is PID 1 would ignore SIGTERM.
# The .deb is checked against the pinned sha256 before it is installed. openssh-client
# (ssh-keygen -Y verify) and gpg check commit signatures for --verify-signatures
# (controller/source/signatures.py); both come from Debian's signed archive.
RUN apt-get update \
    && arch="$(dpkg --print-architecture)" \
    && case "$arch" in \
         amd64) sum="$TINI_SHA256_AMD64" ;; \
         arm64) sum="$TINI_SHA256_ARM64" ;; \
         *) echo "no tini pin for $arch: add it with deploy/update-pins" >&2; exit 1 ;; \
       esac \
    && cd /tmp && apt-get download "tini=${TINI_VERSION}" \
    && echo "$sum  tini_${TINI_VERSION}_${arch}.deb" | sha256sum -c - \
    && dpkg -i "tini_${TINI_VERSION}_${arch}.deb" && rm -f /tmp/tini_*.deb \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        openssh-client gpg \
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

# The demo image: the controller image plus the embedded local AWS and the AWS CLI (the
# `local` extra), for `ssm-gitops demo` / `ssm-gitops local`. Never deploy this one.
FROM controller AS demo
USER 0:0
COPY deploy/requirements-demo.lock /tmp/requirements-demo.lock
RUN /opt/ssm-gitops/venv/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: \
        -r /tmp/requirements-demo.lock \
    && /opt/ssm-gitops/venv/bin/python -m compileall -q /opt/ssm-gitops/venv \
    && rm /tmp/requirements-demo.lock
USER 10001:10001

# The default target (what `docker build .` makes): the controller, no emulator.
FROM controller
