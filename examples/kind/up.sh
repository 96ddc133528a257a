#!/usr/bin/env bash
# The kind workflow end to end, on a machine with Docker, kind, kubectl and helm:
# cluster -> RocketMQ (name server + 2 broker StatefulSets) -> operator image and chart -> sample policy -> chaos Job.
set -euo pipefail
cd "$(dirname "$0")/../.."

kind create cluster --config kind-config.yaml
docker build -t rocketmq-retry-operator:0.1.0 .
kind load docker-image rocketmq-retry-operator:0.1.0 --name rocketmq-retry

kubectl apply -f examples/kind/rocketmq.yaml
kubectl -n rocketmq rollout status deploy/rocketmq-namesrv --timeout=5m
kubectl -n rocketmq rollout status statefulset/broker-a --timeout=5m
kubectl -n rocketmq rollout status statefulset/broker-b --timeout=5m

helm upgrade --install rro charts/rocketmq-retry-operator -n rocketmq-retry --create-namespace \
  --set defaultCluster.nameServers=rocketmq-namesrv.rocketmq:9876 --set 'watchNamespaces={team-a}'
kubectl create namespace team-a --dry-run=client -o yaml | kubectl apply -f -
kubectl -n team-a apply -f examples/retrypolicy-orders.yaml
kubectl -n team-a wait rp/orders --for=condition=Ready --timeout=3m
kubectl -n team-a get rp -o wide

kubectl apply -f chaos/manifests/rbac.yaml -f chaos/manifests/job.yaml
kubectl -n rocketmq wait job/rocketmq-chaos-kill-broker --for=condition=Complete --timeout=2m
kubectl -n rocketmq logs job/rocketmq-chaos-kill-broker
# The killed broker comes back with an empty store; the operator re-applies the policy to it:
kubectl -n team-a wait rp/orders --for=condition=Ready --timeout=3m
kubectl -n team-a describe rp/orders
