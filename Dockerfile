# leadpulse worker image: Debian 12 slim, the packages the project is developed and tested with.
#   docker build -t leadpulse .
#   docker run --rm --read-only -e LEADPULSE_KAFKA_BROKERS=... -e LEADPULSE_REDIS_URL=... leadpulse
# docker-compose.yml runs it with Kafka and Redis; deploy/kubernetes/ on a cluster.
# The image holds: /usr/local/bin/leadpulse (the worker and its tools), /usr/local/bin/
# leadpulse-handoff-consumer (the example CRM consumer, examples/handoff_consumer.c), the Avro
# schemas in /usr/share/leadpulse/schemas, the default configuration and rules in /etc/leadpulse,
# the sample stream in /usr/share/leadpulse/examples/events.jsonl.

# ---- build ------------------------------------------------------------------------------------
FROM debian:12-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake ninja-build pkg-config \
        librdkafka-dev libavro-dev libhiredis-dev libyaml-dev libmicrohttpd-dev libcmocka-dev \
        libcurl4-openssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY include include
COPY src src
COPY schemas schemas
COPY examples/handoff_consumer.c examples/
COPY tests tests
COPY bench bench
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
    && cmake --build /build --target leadpulse handoff-consumer \
    && /build/leadpulse --help >/dev/null

# ---- runtime ----------------------------------------------------------------------------------
FROM debian:12-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="leadpulse" \
      org.opencontainers.image.description="Lead scoring and sales hand-off stream processor: Kafka in, Redis state, hand-offs out" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="debian:12-slim"
# libcurl4: the Schema Registry client (schema_registry.url) and handoff-consumer --registry.
RUN apt-get update \
    && apt-get install -y --no-install-recommends librdkafka1 libavro23 libhiredis0.14 \
        libyaml-0-2 libmicrohttpd12 libcurl4 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 leadpulse \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin leadpulse
COPY --from=build /build/leadpulse /usr/local/bin/leadpulse
COPY --from=build /build/handoff-consumer /usr/local/bin/leadpulse-handoff-consumer
COPY schemas /usr/share/leadpulse/schemas
COPY examples/events.jsonl /usr/share/leadpulse/examples/events.jsonl
COPY config/leadpulse.yaml config/rules.yaml /etc/leadpulse/
# Nothing is written to the file system: logs go to stderr, state to Redis. --read-only works.
ENV LEADPULSE_CONFIG=/etc/leadpulse/leadpulse.yaml \
    LEADPULSE_RULES_PATH=/etc/leadpulse/rules.yaml \
    LEADPULSE_SCHEMAS_DIR=/usr/share/leadpulse/schemas \
    LEADPULSE_HTTP_LISTEN=0.0.0.0:9464
USER 10001:10001
WORKDIR /usr/share/leadpulse
EXPOSE 9464
# The loop's heartbeat, through /healthz (no curl in the image).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/leadpulse", "health"]
# SIGTERM: finish the batch, drain the outbox, commit, leave the group (shutdown.timeout_ms).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/leadpulse"]
CMD ["run"]
