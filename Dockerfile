# One image for every hvbot process: serve, worker, monitor, lab, check-config.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

ARG UID=10001
RUN adduser --disabled-password --gecos "" --home /nonexistent --shell /usr/sbin/nologin \
        --no-create-home --uid "${UID}" appuser

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY jobs ./jobs
COPY lab ./lab
RUN pip install --no-cache-dir .

USER appuser
EXPOSE 3000
ENTRYPOINT ["hvbot"]
CMD ["serve"]
