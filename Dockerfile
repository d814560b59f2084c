# Peerline's web and worker image. Build: `podman build -t peerline .` (or `docker build`).
# BASE is any slim Debian 12 with Python 3.11+: the official python image by default;
# deploy/container-check passes one it builds itself with mmdebstrap, offline.
ARG BASE=docker.io/library/python:3.11-slim-bookworm

FROM ${BASE} AS build
# 1: install only from the wheels in deploy/wheels (deploy/container-check fills them).
ARG PIP_OFFLINE=0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/peerline
WORKDIR /src
COPY requirements.lock ./
COPY deploy/wheels/ /wheels/
# The locked versions first (a layer that outlives code changes), then the package without
# its dependencies: `pip check` fails the build if the lock misses one, rather than float.
RUN if [ "$PIP_OFFLINE" = 1 ]; then set -- --no-index; fi; \
    /opt/peerline/bin/pip install "$@" --find-links /wheels --requirement requirements.lock
COPY pyproject.toml README.md ./
COPY peerline/ peerline/
RUN if [ "$PIP_OFFLINE" = 1 ]; then set -- --no-index; fi; \
    /opt/peerline/bin/pip install "$@" --find-links /wheels --no-deps . \
    && /opt/peerline/bin/pip check \
    && /opt/peerline/bin/pip uninstall --quiet --yes pip

FROM ${BASE}
# pg_dump for `peerline backup`: it must be at least the server's major version (PG_MAJOR,
# compose's postgres:16 by default). Debian's own when it has that version (bookworm: 15), else
# the PostgreSQL project's repository, set up by Debian's postgresql-common. A base that has a
# pg_dump already (deploy/container-check's, built offline with Debian's client for Debian's
# server) keeps it.
ARG PG_MAJOR=16
RUN if ! command -v pg_dump >/dev/null; then \
        apt-get update \
        && { apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" \
            || { apt-get install -y --no-install-recommends postgresql-common ca-certificates \
                && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
                && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}"; }; } \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && pg_dump --version
COPY --from=build /opt/peerline /opt/peerline
# A user of its own, no login, no home to write to but the instance folder.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin peerline \
    && mkdir -p /var/lib/peerline && chown peerline:peerline /var/lib/peerline
ENV PATH=/opt/peerline/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PEERLINE_INSTANCE=/var/lib/peerline \
    PORT=8000
USER peerline
WORKDIR /var/lib/peerline
EXPOSE 8000
# The process answers; /readyz (database and Redis) is for the load balancer, not for a
# restart: a database outage must not make every web container restart at once.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
CMD ["gunicorn", "--config", "python:peerline.gunicorn_conf", "peerline.app:create_app()"]
