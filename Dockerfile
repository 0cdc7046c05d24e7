# repl in a container (docker-compose.yaml builds it for its repl service):
#   docker build -t repl .
#   docker run --rm -v "$PWD/repl.yaml:/etc/repl/repl.yaml:ro" -e PRODUCTION_DSN=... repl repl status
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

WORKDIR /src
# What the wheel is built from: the package, and the SQL and alembic scripts it bundles.
COPY pyproject.toml README.md ./
COPY replication/ replication/
COPY sql/ sql/
COPY alembic/ alembic/
RUN pip install . \
 && useradd --create-home --shell /usr/sbin/nologin repl

USER repl
WORKDIR /home/repl
ENV REPL_CONFIG=/etc/repl/repl.yaml
CMD ["repl", "--help"]
