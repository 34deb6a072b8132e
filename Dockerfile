# Homeroom's app node: slim Python 3.11, exactly the locked dependencies (hashes checked), run
# as a user without privileges, every setting from the environment (README: Configuration).

# The pages' socket.io client, from web/package-lock.json (no CDN at run time).
FROM node:20-bookworm-slim AS assets
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# The runtime half of the lock (make lock writes both): no test tools in the image.
COPY requirements-app.lock ./
RUN pip install --require-hashes -r requirements-app.lock
COPY pyproject.toml README.md ./
COPY rooms rooms
COPY signaling signaling
COPY media media
COPY config config
COPY web web
COPY --from=assets /web/node_modules/socket.io-client/dist/socket.io.min.js web/static/vendor/
# Editable, as make installs it: the pages are served from /app/web/static.
RUN pip install --no-deps -e . \
    && useradd --system --uid 10001 --home-dir /var/lib/homeroom --create-home homeroom

USER homeroom
# Production by default: refuses to start with a development secret or without https
# (HOMEROOM_PUBLIC_URL). Listens on every interface of the container; the proxy is in front.
ENV HOMEROOM_ENV=production \
    HOMEROOM_HOST=0.0.0.0 \
    HOMEROOM_PORT=8080 \
    HOMEROOM_VAR_DIR=/var/lib/homeroom
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HOMEROOM_PORT', '8080'), timeout=4)"]
CMD ["homeroom", "serve"]
