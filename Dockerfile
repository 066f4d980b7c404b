# The coordinator's one image: web (gunicorn, the default CMD), workers, beat, Flower
# and migrate all run it with another command (docker-compose.yml, deploy/kubernetes/).
# Build: docker build -t job-queue-coordinator:latest .
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so a change to the code alone reuses this layer.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
# Admin's CSS and JS, compressed, served by WhiteNoise; needs no database or Redis.
# Runs as root, before USER: the processes only read .run/static.
RUN python manage.py collectstatic --noinput -v0

# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it without a passwd lookup.
RUN groupadd --system --gid 10001 coordinator \
    && useradd --system --uid 10001 --gid coordinator --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin coordinator
USER 10001:10001

EXPOSE 3000

# The web process's liveness (GET /health touches neither Redis nor the database).
# python's urllib, as slim images have no curl; 127.0.0.1 is in the default
# DJANGO_ALLOWED_HOSTS and in docker-compose.yml's: keep it there. Other commands
# (workers, beat, Flower, migrate) replace or disable this check (docker-compose.yml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/health', timeout=4)"]

CMD ["gunicorn", "coordinator_project.wsgi:application", "--bind", "0.0.0.0:3000", "--workers", "2"]
