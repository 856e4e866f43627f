# The server image: gunicorn serving the exchange as a non-root user. Ready for a read-only
# root filesystem: the server writes only to /tmp (uploads being checked) and /data (SQLite
# and local files, when those are used).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    EXCHANGE_DATA_DIR=/data

RUN groupadd --system --gid 10001 exchange \
    && useradd --system --uid 10001 --gid exchange --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin exchange \
    && install -d -o exchange -g exchange -m 0750 /data

WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# .dockerignore lists what goes in (an allow-list): the Django project and its apps.
COPY . ./
# Static files are collected into the image (whitenoise serves them). Importing the settings
# needs a key and a database: throwaway ones that stay out of the image.
RUN SECRET_KEY=collectstatic-only DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 \
        python manage.py collectstatic --noinput \
    && python -m compileall -q /app

USER 10001:10001
EXPOSE 8000
VOLUME ["/data"]
CMD ["gunicorn", "exchange_site.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4", "--timeout", "300", "--access-logfile", "-"]
