# ievo worker image: a build stage with the same install steps as the README, and a slim runtime
# stage with only the shared libraries the binary links, running as a non-root user.
#
#   docker build -t ievo .
#   docker run --rm -v $PWD/model.safetensors:/etc/ievo/model.safetensors:ro \
#     -v $PWD/worker.properties:/etc/ievo/worker.properties:ro -v ievo-state:/var/lib/ievo ievo
#
# tests/integration/test_container.py checks, without a Docker engine, that the runtime packages
# below provide every library `ldd ievo` lists and that this file uses the README's install steps.

FROM debian:12-slim AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN rm -rf build && scripts/build.sh build && install -m 0755 build/ievo /usr/local/bin/ievo

FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librdkafka1 libavro23 librocksdb7.8 libdnnl2 ocl-icd-libopencl1 libgomp1 libssl3 libutf8proc2 libmicrohttpd12 libcurl4 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/ievo --shell /usr/sbin/nologin ievo \
 && mkdir -p /var/lib/ievo /etc/ievo/model && chown ievo:ievo /var/lib/ievo /etc/ievo/model
COPY --from=build /usr/local/bin/ievo /usr/local/bin/ievo
USER 10001:10001
WORKDIR /var/lib/ievo
# One compute thread per worker; scale with processes (pods). Settings come from the mounted
# properties file, overridable per pod with IEVO_CFG_* variables.
ENV OMP_NUM_THREADS=1
VOLUME ["/var/lib/ievo"]
ENTRYPOINT ["/usr/local/bin/ievo"]
CMD ["worker", "-F", "/etc/ievo/worker.properties"]
