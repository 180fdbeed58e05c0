FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY refairn ./refairn
COPY ingestion ./ingestion
COPY agents ./agents
COPY attribution ./attribution
COPY commissions ./commissions
COPY manage.py ./
RUN pip install --no-cache-dir . && python manage.py collectstatic --no-input --settings=refairn.settings.base
EXPOSE 8000
CMD ["gunicorn", "refairn.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4"]
