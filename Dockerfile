# The operator's container image: `rental-operator` installed from the project's wheel, never run from
# the source folder. The reference gateway is a development tool and is not in it.
#
# - builder: installs the operator's dependencies into the virtualenv /opt/venv from the hash-pinned
#   lock requirements/image.txt (pip refuses any file whose hash the lock does not list, and resolves
#   nothing itself: --no-deps), builds the project's wheel with the setuptools pinned the same way in
#   requirements/build.txt, installs it without dependencies, and `pip check`s that the lock was
#   complete (pip removed afterwards). requirements/compile regenerates both locks.
# - final: the base image, that virtualenv and a non-root user; no compiler, no pip, no sources.
#   Nothing is written at run time except temporary files, so the image runs with a read-only root
#   filesystem (give it a writable /tmp when a kubeconfig with embedded certificates is used: the
#   Kubernetes client writes those to temporary files).
#
# BASE_IMAGE must provide python3 (3.11+) with venv/ensurepip. Both stages use the same one, so the
# virtualenv's interpreter path is valid in the final stage. docs/deployment.md shows how to build.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
# Marks both stages' images, so local builds can prune their own leftovers (rental_devenv.image).
LABEL io.purifier-rental.build="true"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Dependencies first, in a layer of their own that a change to the sources does not invalidate.
COPY requirements/image.txt requirements/build.txt requirements/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes --no-deps -r requirements/image.txt
# Only what the wheel is built from (.dockerignore keeps everything else out of the context).
COPY pyproject.toml README.md ./
COPY operator/ operator/
# The wheels are compiled to .pyc on install: a read-only root filesystem cannot cache them later.
# The kubernetes package ships an asyncio twin of its generated client (kubernetes/aio, ~70 MB) that
# nothing here imports (Kopf talks to the API through aiohttp, the operator uses the synchronous
# client): it is removed, with the test folders of dependencies; the import check proves the rest.
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes --no-deps -r requirements/build.txt \
 && /opt/build/bin/pip wheel --no-build-isolation --no-deps --no-index --wheel-dir /wheels . \
 && /opt/venv/bin/pip install --no-deps --no-index /wheels/purifier_rental_operator-*.whl \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/pip uninstall --yes pip setuptools \
 && site="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
 && rm -rf "$site/kubernetes/aio" "$site"/*/tests \
 && /opt/venv/bin/python -c 'import kubernetes.client, kubernetes.config, kopf, rental_operator.cli'

FROM ${BASE_IMAGE}
LABEL io.purifier-rental.build="true" \
      org.opencontainers.image.title="purifier-rental-operator" \
      org.opencontainers.image.description="Kubernetes operator for a water-purifier rental business (Kopf)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONSAFEPATH=1
# A fixed uid, so that Kubernetes' runAsNonRoot can check it without a name lookup.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin rental
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
# 8080 MyPage, 8081 Kopf's liveness endpoint, 9090 Prometheus metrics.
EXPOSE 8080 8081 9090
ENTRYPOINT ["/opt/venv/bin/rental-operator"]
CMD ["run", "--liveness=http://0.0.0.0:8081/healthz"]
