# Ark container image: multi-stage, the final stage has no compilers and no build tools.
#
#   docker build -t ark:latest .        (or: make docker)
#   docker run --rm --env-file ark.env --stop-timeout 30 ark:latest
#
# BuildKit (the default builder since Docker 23) is needed for the RUN --mount below.

# ---- build: wheels for ark and every runtime dependency ---------------------------------
FROM python:3.12-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
# Only what the package build reads (pyproject.toml names README.md as the long description).
COPY pyproject.toml README.md ./
COPY ark ./ark
RUN pip wheel --wheel-dir /wheels .

# ---- runtime -----------------------------------------------------------------------------
FROM python:3.12-slim

# PYTHONUNBUFFERED: log and metric lines leave at once. MALLOC_ARENA_MAX=2: fewer glibc
# malloc arenas, lower resident memory for an asyncio process. PYTHONDONTWRITEBYTECODE is
# deliberately not set: the bytecode is compiled below, at build time.
ENV PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Install from the wheels only (--no-index: nothing is fetched here; the wheels are
# bind-mounted, so they never land in a layer), then compile the bytecode once: the process
# runs as a user that cannot write /usr/local, and the python:*-slim images ship the standard
# library without bytecode, so without this every start (and every `ark health` check)
# would compile Ark, its dependencies and the standard library again in memory.
# Test suites and GUI/tooling parts of the standard library that Ark never imports are skipped.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels --no-compile ark \
 && python -m compileall -q -j 0 \
      -x '/(tests?|idle_test|idlelib|tkinter|turtledemo|lib2to3|ensurepip)/' \
      "$(python -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')" \
 && ark --version

RUN groupadd --system --gid 10001 ark \
 && useradd --system --uid 10001 --gid ark --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin ark \
 && mkdir -p /app

# An empty working directory. Ark reads /app/.env if one is mounted there; otherwise the
# configuration comes from the environment (task definition, --env-file, compose).
WORKDIR /app
USER ark

# No EXPOSE: Socket Mode is an outbound WebSocket; nothing listens.
# Health without a port: the gateway keeps a heartbeat file (ARK_HEALTH_FILE, by default
# /tmp/ark-health.json) and `ark health` exits 0 while it says "connected, heard from Slack
# recently". ECS ignores this instruction; give the task definition the same healthCheck
# (docs/operations.md).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["ark", "health"]

# SIGTERM (docker's default stop signal) starts Ark's drain: give it 30 s (--stop-timeout 30).
ENTRYPOINT ["ark"]
