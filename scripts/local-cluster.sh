#!/usr/bin/env bash
# Starts a 3-member ferrokv cluster on 127.0.0.1 (clients on 12379/22379/32379, peers on
# 12380/22380/32380), data under ${DATA:-/tmp/ferrokv-cluster}. Prints the pids; stop the
# cluster with `kill <pids>`. Usage: scripts/local-cluster.sh [path/to/ferrokv]
set -euo pipefail
BIN=${1:-target/release/ferrokv}
DATA=${DATA:-/tmp/ferrokv-cluster}
CLUSTER=a=http://127.0.0.1:12380,b=http://127.0.0.1:22380,c=http://127.0.0.1:32380
mkdir -p "$DATA"
for m in a:1 b:2 c:3; do
  n=${m%:*} p=${m#*:}
  "$BIN" --name "$n" --data-dir "$DATA/$n.etcd" \
    --listen-client-urls "http://127.0.0.1:${p}2379" --advertise-client-urls "http://127.0.0.1:${p}2379" \
    --listen-peer-urls "http://127.0.0.1:${p}2380" --initial-advertise-peer-urls "http://127.0.0.1:${p}2380" \
    --initial-cluster "$CLUSTER" --initial-cluster-token local --initial-cluster-state new \
    >"$DATA/$n.log" 2>&1 &
  echo "$n pid $!"
done
echo "endpoints: 127.0.0.1:12379,127.0.0.1:22379,127.0.0.1:32379"
