# One image, two roles:
#   web:    docker run -p 8000:8000 -e DATABASE_URL=… -e REDIS_URL=… kairos
#   worker: docker run -e DATABASE_URL=… -e REDIS_URL=… kairos flask --app wsgi worker
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 KAIROS_INSTANCE_PATH=/data
WORKDIR /app
COPY requirements-runtime.txt .
RUN pip install --no-cache-dir -r requirements-runtime.txt
COPY portal portal
COPY jobs jobs
COPY migrations migrations
COPY templates templates
COPY static static
COPY translations translations
COPY wsgi.py manage.py gunicorn.conf.py ./
RUN useradd --system --home /app kairos && mkdir -p /data && chown kairos /data
USER kairos
VOLUME /data
EXPOSE 8000
# Migrations are idempotent; running them at web start keeps single-container installs simple.
CMD ["sh", "-c", "flask --app wsgi db upgrade && exec gunicorn wsgi:app --bind 0.0.0.0:8000 --workers ${WEB_CONCURRENCY:-2}"]
