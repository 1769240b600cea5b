# lagwatch container image (docs/operations.md#container).
#
#   docker build --build-arg LAGWATCH_REVISION="$(git rev-parse --short=12 HEAD)" -t lagwatch .
#   docker run -p 9817:9817 -v "$PWD/lagwatch.toml:/etc/lagwatch/lagwatch.toml:ro" \
#     -v "$PWD/secrets:/run/secrets/lagwatch:ro" lagwatch
#
# The build stage runs the same scripts/setup and scripts/build as the README, so the image
# is built the way developers and CI build. The runtime stage holds only the shared libraries
# lagwatch links (tests/integration/test_dockerfile.py checks this list against
# `ldd build/lagwatch`), curl for the HEALTHCHECK, and CA certificates for https pushes and
# notifications.

# ---- build --------------------------------------------------------------------------------
FROM debian:bookworm-slim AS build
WORKDIR /src
COPY scripts/setup scripts/setup
RUN scripts/setup --build-only && rm -rf /var/lib/apt/lists/*
COPY . .
# .git stays out of the context: the revision lagwatch_build_info and --version report comes
# from here ("unknown" when not given).
ARG LAGWATCH_REVISION=unknown
RUN LAGWATCH_REVISION="$LAGWATCH_REVISION" scripts/build \
 && strip --strip-debug -o /lagwatch build/lagwatch \
 && /lagwatch --version

# ---- runtime ------------------------------------------------------------------------------
FROM debian:bookworm-slim
# One package per shared library lagwatch links (their own dependencies come with them).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libpqxx-6.4 libpq5 libmariadb3 libprometheus-cpp-core1.0 libtomlplusplus3 \
      libspdlog1.10 libfmt9 libcurl4 libssl3 libcrypt1 \
      ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 lagwatch \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/lagwatch --no-create-home \
      --shell /usr/sbin/nologin lagwatch \
 && install -d -o root -g root -m 0755 /etc/lagwatch \
 && install -d -o lagwatch -g lagwatch -m 0700 /var/lib/lagwatch
COPY --from=build /lagwatch /usr/bin/lagwatch
COPY packaging/lagwatch.toml /usr/share/doc/lagwatch/lagwatch.toml.example
RUN /usr/bin/lagwatch --version

USER 10001:10001
WORKDIR /var/lib/lagwatch
# HTTP: /metrics, the API, /-/healthy. The HAProxy agent port ([server] agent_listen) is
# off by default; publish the one you configure.
EXPOSE 9817
# Assumes [server] listen on port 9817 (the default); change both together.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9817/-/healthy"]
ENTRYPOINT ["/usr/bin/lagwatch"]
CMD ["--config", "/etc/lagwatch/lagwatch.toml"]
