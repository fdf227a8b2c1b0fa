# alignbot: `docker compose up` runs it on PostgreSQL (compose.yaml); README "Running in production".
# Build stage: the package as a wheel, so the image holds no source tree, tests or build tools.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot bot
COPY handlers handlers
COPY storage storage
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=3000 \
    MPLCONFIGDIR=/tmp/matplotlib
RUN groupadd --system --gid 10001 alignbot \
    && useradd --system --uid 10001 --gid alignbot --home-dir /app --create-home alignbot
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
USER 10001:10001
EXPOSE 3000
# slim has no curl: Python asks /healthz (200 when the database answers; `alignbot worker`
# serves it with --port $PORT). The one-shot `db upgrade` turns the check off.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]
ENTRYPOINT ["alignbot"]
CMD ["run"]
