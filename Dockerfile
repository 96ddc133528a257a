# The operator image: `docker build -t rocketmq-retry-operator:0.1.0 .` (then `kind load docker-image ...`).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY chaos ./chaos
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
COPY --from=build /install /usr/local
# Non-root and read-only at run time: the chart sets readOnlyRootFilesystem and runs as this user.
USER 65532:65532
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
ENTRYPOINT ["rocketmq-retry"]
CMD ["operator", "run", "--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz"]
