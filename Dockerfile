# cpor-worker container: build in a full Rust image, run in a slim Debian one as a non-root user.
# The database and SMTP server are configured through CPOR_* environment variables (README.md).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin cpor-worker \
    && strip target/release/cpor-worker

FROM debian:bookworm-slim AS runtime
# ca-certificates: TLS to SMTP and PostgreSQL; curl: the HEALTHCHECK below.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin cpor \
    && mkdir -p /app/data /app/outbox \
    && chown cpor:cpor /app/data /app/outbox
WORKDIR /app
COPY --from=build /src/target/release/cpor-worker /usr/local/bin/cpor-worker
COPY config ./config
COPY templates ./templates
USER 10001:10001
ENV CPOR_DATABASE_URL=sqlite:///app/data/cpor.db \
    CPOR_OUTBOX_DIR=/app/outbox \
    CPOR_HTTP_LISTEN=0.0.0.0:9464 \
    CPOR_LOG_FORMAT=json
VOLUME ["/app/data", "/app/outbox"]
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=3s --start-period=15s --retries=3 \
    CMD ["curl", "-fsS", "--max-time", "2", "http://127.0.0.1:9464/healthz"]
ENTRYPOINT ["cpor-worker"]
CMD ["run"]
