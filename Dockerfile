# syntax=docker/dockerfile:1.7
# covidnews: one image for every service (API + its index follower, NLP workers, beat, bot,
# crawler).
#
#   docker build -t covidnews .                                   # offline NLP (default extras)
#   docker build -t covidnews:ml \
#     --build-arg EXTRAS=crawler,nlp,api,bot,ml \
#     --build-arg PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu .   # + Hugging Face
#   docker build -t covidnews:ml-models --build-arg EXTRAS=crawler,nlp,api,bot,ml \
#     --build-arg PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu \
#     --build-arg MODELS="intfloat/multilingual-e5-small Helsinki-NLP/opus-mt-es-en" \
#     --secret id=hf_token,env=HF_TOKEN .                          # models baked in
#
# Entrypoint `covidnews`; default command: the API on port 8000. Workers override the entrypoint
# with `celery -A covidnews.celery worker -Q QUEUE` (see docker-compose.yml, deploy/k8s/).
# See docs/operations.md.

ARG PYTHON_VERSION=3.11

# --- builder: wheels for the app and every dependency -------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
ARG EXTRAS=crawler,nlp,api,bot
# The ml extra pins torch==2.13.0: take the CPU-only build from PyTorch's index (no CUDA, ~5x
# smaller): --build-arg PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_EXTRA_INDEX_URL=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL}
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY covidnews ./covidnews
COPY crawler ./crawler
COPY nlp_worker ./nlp_worker
COPY api ./api
COPY bot ./bot
# constraints.txt pins torch as 2.13.0+cpu: without the CPU index the ml extra cannot resolve.
RUN pip wheel --wheel-dir /wheels -c constraints.txt ".[${EXTRAS}]"

# --- models: optional Hugging Face models baked into the image (MODELS="id id …") ---------------
FROM builder AS models
ARG MODELS=
RUN mkdir -p /models
RUN --mount=type=secret,id=hf_token,required=false \
    if [ -n "${MODELS}" ]; then \
      pip install --no-index --find-links /wheels covidnews \
      && pip install -c constraints.txt huggingface_hub \
      && HF_TOKEN="$(cat /run/secrets/hf_token 2>/dev/null || true)" \
         covidnews models pull ${MODELS} --dest /models \
      && covidnews models list --dir /models; \
    fi

# --- runtime: slim, non-root -------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG EXTRAS=crawler,nlp,api,bot
LABEL org.opencontainers.image.title="covidnews" \
      org.opencontainers.image.description="Spanish-language Covid-19 news: crawler, NLP workers, search API, archive, bot" \
      org.opencontainers.image.licenses="MIT"
# apertium-eng-spa: the default (offline) es<->en translator.
RUN apt-get update \
 && apt-get install -y --no-install-recommends apertium-eng-spa \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 covidnews \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/covidnews \
      --shell /usr/sbin/nologin covidnews
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels "covidnews[${EXTRAS}]" \
 && covidnews --version
# Baked models (empty unless built with MODELS=…): point COVIDNEWS_EMBEDDING_MODEL /
# COVIDNEWS_TRANSLATION_MODELS at /opt/covidnews/models/ORG/NAME, or mount a volume there.
COPY --from=models --chown=10001:10001 /models /opt/covidnews/models
RUN mkdir -p /data && chown 10001:10001 /data
ENV COVIDNEWS_DATA_DIR=/data \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1
VOLUME ["/data"]
USER 10001:10001
WORKDIR /home/covidnews
EXPOSE 8000
# Liveness of the API (the default command). Worker containers override or disable it; readiness
# (/readyz: indexes bootstrapped and caught up with the store) is for the orchestrator.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["covidnews"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
