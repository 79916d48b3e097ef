#!/usr/bin/env bash
# Restart-to-first-linearizable-read and RSS after 200k puts, whole cluster kill -9.
# Usage: restart-after-puts.sh ferrokv|etcd [puts] (after cargo build --release -p ferrokv -p benchmark).
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
KIND=$1; N=${2:-200000}
BIN=$REPO/target/release/ferrokv; [ "$KIND" = etcd ] && BIN=/usr/bin/etcd
BENCH=$REPO/target/release/ferrokv-bench
D=/tmp/ferrokv-bench-xfer/rs-$KIND; rm -rf $D; mkdir -p $D
base=21800; [ "$KIND" = etcd ] && base=21900
IC=""; for i in 0 1 2; do IC="$IC,m$i=http://127.0.0.1:$((base+10+i))"; done; IC=${IC#,}
EPS=""; for i in 0 1 2; do EPS="$EPS,http://127.0.0.1:$((base+i))"; done; EPS=${EPS#,}
start() { i=$1
  $BIN --name m$i --data-dir $D/m$i --listen-client-urls http://127.0.0.1:$((base+i)) --advertise-client-urls http://127.0.0.1:$((base+i)) \
    --listen-peer-urls http://127.0.0.1:$((base+10+i)) --initial-advertise-peer-urls http://127.0.0.1:$((base+10+i)) \
    --initial-cluster $IC --initial-cluster-token rs >> $D/m$i.log 2>&1 &
  echo $! > $D/m$i.pid; }
for i in 0 1 2; do start $i; done
for t in $(seq 100); do etcdctl --endpoints $EPS endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
setsid $BENCH --endpoints $EPS --workload put --clients 128 --ops $N --warmup-ops 0 > $D/bench.out 2>&1 < /dev/null
sleep 2
for i in 0 1 2; do echo "rss m$i $(grep VmRSS /proc/$(cat $D/m$i.pid)/status)"; done
for i in 0 1 2; do kill -9 $(cat $D/m$i.pid); done; wait 2>/dev/null
t0=$(date +%s.%N); for i in 0 1 2; do start $i; done
until etcdctl --endpoints $EPS --command-timeout=500ms get x >/dev/null 2>&1; do :; done
t1=$(date +%s.%N)
echo "$KIND restart-to-first-linearizable-read $(python3 -c "print(round($t1-$t0,2))") s"
for i in 0 1 2; do kill $(cat $D/m$i.pid); done; wait 2>/dev/null
