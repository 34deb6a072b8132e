# Janus VideoRoom for group sessions, from Debian's package, started by deploy/janus-start.sh
# from the config/janus/ templates that docker-compose.yml mounts.
FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends janus \
    && rm -rf /var/lib/apt/lists/*
COPY deploy/janus-start.sh /usr/local/bin/homeroom-janus
RUN useradd --system --uid 10002 --no-create-home janus-run
USER janus-run
ENTRYPOINT ["/usr/local/bin/homeroom-janus"]
