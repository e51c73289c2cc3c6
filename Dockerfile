FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# docker compose build --build-arg REQUIREMENTS=requirements-embeddings.txt adds the optional
# sentence embedder the router can use (PREFARENA_ROUTER_EMBEDDINGS=1).
ARG REQUIREMENTS=requirements.txt
COPY requirements*.txt ./
RUN pip install --no-cache-dir -r "$REQUIREMENTS"
COPY . .
RUN DJANGO_DEBUG=1 python manage.py collectstatic --noinput -v0
RUN useradd --create-home prefarena && mkdir -p /srv/media && chown -R prefarena /app /srv/media
USER prefarena
EXPOSE 8000
CMD ["gunicorn", "prefarena.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--access-logfile", "-"]
