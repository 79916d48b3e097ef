#!/usr/bin/env bash
# InstallSnapshot of a ~250 MB store: ferrokv vs etcd 3.4, one after the other on this machine.
# Usage: snapshot-transfer.sh ferrokv|etcd (after cargo build --release -p ferrokv -p benchmark).
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
KIND=$1   # ferrokv | etcd
BIN=$REPO/target/release/ferrokv; [ "$KIND" = etcd ] && BIN=/usr/bin/etcd
BENCH=$REPO/target/release/ferrokv-bench
D=/tmp/ferrokv-bench-xfer/$KIND; rm -rf $D; mkdir -p $D
base=21600; [ "$KIND" = etcd ] && base=21700
IC=""; for i in 0 1 2; do IC="$IC,m$i=http://127.0.0.1:$((base+10+i))"; done; IC=${IC#,}
EPS=""; for i in 0 1 2; do EPS="$EPS,http://127.0.0.1:$((base+i))"; done; EPS=${EPS#,}
start() { i=$1
  $BIN --name m$i --data-dir $D/m$i --listen-client-urls http://127.0.0.1:$((base+i)) --advertise-client-urls http://127.0.0.1:$((base+i)) \
    --listen-peer-urls http://127.0.0.1:$((base+10+i)) --initial-advertise-peer-urls http://127.0.0.1:$((base+10+i)) \
    --initial-cluster $IC --initial-cluster-token xfer --snapshot-count 10000 >> $D/m$i.log 2>&1 &
  echo $! > $D/m$i.pid; }
for i in 0 1 2; do start $i; done
for t in $(seq 100); do etcdctl --endpoints $EPS endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
leader=$(etcdctl --endpoints $EPS endpoint status -w json | python3 -c 'import json,sys; a=json.load(sys.stdin); print([i for i,e in enumerate(a) if e["Status"]["leader"]==e["Status"]["header"]["member_id"]][0])')
f=$(( (leader+1)%3 )); others=""; for i in 0 1 2; do [ $i != $f ] && others="$others,http://127.0.0.1:$((base+i))"; done; others=${others#,}
kill -9 $(cat $D/m$f.pid); wait $(cat $D/m$f.pid) 2>/dev/null
setsid $BENCH --endpoints $others --workload put --clients 16 --ops 30000 --value-bytes 8192 --warmup-ops 0 > $D/bench.out 2>&1 < /dev/null
etcdctl --endpoints $others put marker done >/dev/null
du -sh $D/m$leader >> $D/result
t0=$(date +%s.%N); start $f
until [ "$(etcdctl --endpoints http://127.0.0.1:$((base+f)) get marker --consistency=s --print-value-only 2>/dev/null)" = done ]; do sleep 0.05; done
t1=$(date +%s.%N)
echo "$KIND restart-to-serving $(python3 -c "print(round($t1-$t0,2))") s" >> $D/result
curl -s http://127.0.0.1:$((base+leader))/metrics | grep -E "^etcd_network_snapshot_send_(success|total_duration_seconds_sum)" >> $D/result
curl -s http://127.0.0.1:$((base+f))/metrics | grep -E "^etcd_network_snapshot_receive_(success|total_duration_seconds_sum)" >> $D/result
grep -hiE "snapshot" $D/m$leader.log $D/m$f.log | grep -iE "sent|received|install|bytes" | tail -6 >> $D/result
for i in 0 1 2; do kill $(cat $D/m$i.pid) 2>/dev/null; done; wait
cat $D/result
