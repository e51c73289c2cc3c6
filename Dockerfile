FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# docker compose build --build-arg REQUIREMENTS=requirements-embeddings.txt adds the optional
# sentence embedder the router can use (PREFARENA_ROUTER_EMBEDDINGS=1).
ARG REQUIREMENTS=requirements.txt
COPY requirements*.txt ./
RUN pip install --no-cache-dir -r "$REQUIREMENTS"
COPY . .
# With the production storage (DEBUG off), so the hashed names' manifest is written: the app
# runs with DEBUG off, and without the manifest every page is a 500.
RUN DJANGO_DEBUG=0 DJANGO_SECRET_KEY=collectstatic-only-not-a-secret python manage.py collectstatic --noinput -v0
# The model cache volume mounts on ~/.cache: it must exist, owned by the app's user, or Docker
# creates the mount point as root and no model can be cached.
RUN useradd --create-home prefarena && mkdir -p /srv/media /home/prefarena/.cache \
    && chown -R prefarena /app /srv/media /home/prefarena/.cache
USER prefarena
EXPOSE 8000
CMD ["gunicorn", "prefarena.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--access-logfile", "-"]
