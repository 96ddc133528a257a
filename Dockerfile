# The operator image: `docker build -t rocketmq-retry-operator:0.1.0 .` (then `kind load docker-image ...`).
# It installs the operator's distribution (operator/) only: no lab, no chaos, no toolchains.
# BASE is any image with Python >= 3.11 and its venv module: the public python image by default; `rocketmq-retry
# kind up` passes a Python made from Debian's packages, since no registry can be reached on its machines.
ARG BASE=python:3.11-slim
FROM ${BASE} AS build
WORKDIR /src
COPY operator/pyproject.toml ./operator/
# Dependencies first, from pyproject.toml alone (an empty package), so a change of code reuses this layer.
RUN mkdir operator/rocketmq_retry && python3 -m venv /opt/rocketmq-retry \
    && /opt/rocketmq-retry/bin/pip install --no-cache-dir ./operator && rm -rf operator/build
COPY operator ./operator
RUN /opt/rocketmq-retry/bin/pip install --no-cache-dir --no-deps ./operator

FROM ${BASE}
COPY --from=build /opt/rocketmq-retry /opt/rocketmq-retry
# Non-root and read-only at run time: the chart sets readOnlyRootFilesystem and runs as this user.
USER 65532:65532
ENV PATH=/opt/rocketmq-retry/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
ENTRYPOINT ["rocketmq-retry"]
CMD ["operator", "run", "--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz"]
