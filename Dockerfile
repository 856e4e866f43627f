# The server image: gunicorn serving the exchange as a non-root user. Ready for a read-only
# root filesystem: the server writes only to /tmp (uploads being checked) and /data (SQLite
# and local files, when those are used).
#
# BASE_IMAGE is any Debian-like image with Python 3.11 and its venv module. The default is the
# official Python image; where Docker Hub is out of reach, `make image` builds one from
# Debian's packages (scripts/image/base) and passes it here.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    EXCHANGE_DATA_DIR=/data

RUN groupadd --system --gid 10001 exchange \
    && useradd --system --uid 10001 --gid exchange --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin exchange \
    && install -d -o exchange -g exchange -m 0750 /data

# The server's packages live in a virtualenv, whichever Python the base provides (Debian's
# own refuses pip installs into the system).
WORKDIR /app
COPY requirements.txt ./
# A build behind a TLS-inspecting proxy passes its CA bundle (mounted into the build) here.
ARG PIP_CERT
ARG PIP_INDEX_URL
RUN python3 -m venv /opt/venv \
    && pip install --no-cache-dir -r requirements.txt

# .dockerignore lists what goes in (an allow-list): the Django project and its apps.
COPY . ./
# Static files are collected into the image (whitenoise serves them). Importing the settings
# needs a key and a database: throwaway ones that stay out of the image.
RUN SECRET_KEY=collectstatic-only DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 \
        python manage.py collectstatic --noinput \
    && rm -f /tmp/collectstatic.sqlite3 \
    && python -m compileall -q /app

# pyproject.toml's version, passed by `make image` (the same in the tag and the chart).
ARG VERSION=unreleased
LABEL org.opencontainers.image.title="nbgrader exchange service" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="BSD-3-Clause"

USER 10001:10001
EXPOSE 8000
VOLUME ["/data"]
CMD ["gunicorn", "exchange_site.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4", "--worker-class", "exchange_site.gunicorn_worker.BalancedThreadWorker", "--timeout", "300", "--keep-alive", "75", "--access-logfile", "-"]
