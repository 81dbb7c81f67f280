# rolegate container image: built in a Rust image, run from a distroless image as a non-root user.
#   docker build -t rolegate:local .
#   docker run --rm -p 8080:8080 -v "$PWD/my.toml:/etc/rolegate/rolegate.toml:ro" rolegate:local
# The configuration is /etc/rolegate/rolegate.toml (ROLEGATE_CONFIG); every key can also be set as
# ROLEGATE__<SECTION>__<KEY>. The embedded store lives in /var/lib/rolegate/data (a volume).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY rust-toolchain.toml Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY templates templates
COPY static static
RUN cargo build --release --locked --bin rolegate \
 && install -d -o 65532 -g 65532 -m 0700 /out/var/lib/rolegate

# glibc and libgcc only: rolegate links nothing else dynamically (TLS is rustls, crypto aws-lc).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/rolegate /usr/local/bin/rolegate
COPY --from=build --chown=65532:65532 /out/var/lib/rolegate /var/lib/rolegate
COPY config/rolegate.toml /etc/rolegate/rolegate.toml
ENV ROLEGATE_CONFIG=/etc/rolegate/rolegate.toml \
    ROLEGATE__STORE__PATH=/var/lib/rolegate/data \
    ROLEGATE__SERVER__LISTEN=0.0.0.0:8080
USER 65532:65532
WORKDIR /var/lib/rolegate
VOLUME ["/var/lib/rolegate"]
EXPOSE 8080
# SIGTERM drains in-flight requests ([shutdown] drain_seconds) and flushes the audit log.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/rolegate"]
CMD ["serve"]
