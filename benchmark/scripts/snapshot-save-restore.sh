#!/usr/bin/env bash
# snapshot save / restore of the ~250 MB stores snapshot-transfer.sh left (run it for both
# kinds first), same machine. Needs cargo build --release -p ferrokv -p benchmark.
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
FK=$REPO/target/release/ferrokv
for KIND in etcd ferrokv; do
  BIN=$FK; [ "$KIND" = etcd ] && BIN=/usr/bin/etcd
  D=/tmp/ferrokv-bench-xfer/$KIND; base=21600; [ "$KIND" = etcd ] && base=21700
  IC=""; for i in 0 1 2; do IC="$IC,m$i=http://127.0.0.1:$((base+10+i))"; done; IC=${IC#,}
  for i in 0 1 2; do
    $BIN --name m$i --data-dir $D/m$i --listen-client-urls http://127.0.0.1:$((base+i)) --advertise-client-urls http://127.0.0.1:$((base+i)) \
      --listen-peer-urls http://127.0.0.1:$((base+10+i)) --initial-advertise-peer-urls http://127.0.0.1:$((base+10+i)) \
      --initial-cluster $IC --initial-cluster-token xfer --snapshot-count 10000 >> $D/m$i.log 2>&1 &
    echo $! > $D/m$i.pid
  done
  EP=http://127.0.0.1:$base
  for t in $(seq 200); do etcdctl --endpoints $EP endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
  rm -f $D/s-*.db
  for tool in etcdctl ferrokv; do
    t0=$(date +%s.%N)
    if [ $tool = etcdctl ]; then etcdctl --endpoints $EP snapshot save $D/s-$tool.db > /dev/null 2>&1; else $FK snapshot save $D/s-$tool.db --endpoints $EP > /dev/null 2>&1; fi
    t1=$(date +%s.%N)
    sz=$(stat -c %s $D/s-$tool.db)
    echo "$KIND server, $tool snapshot save: $((sz/1000000)) MB in $(python3 -c "print(round($t1-$t0,2))") s = $(python3 -c "print(round($sz/1e6/($t1-$t0)))") MB/s"
  done
  for i in 0 1 2; do kill $(cat $D/m$i.pid); done; wait
  cmp <(etcdctl snapshot status $D/s-etcdctl.db -w json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["revision"], d["totalKey"])') \
      <($FK snapshot status $D/s-etcdctl.db -w json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["revision"], d["totalKey"])') && echo "status equal"
  diff <(etcdctl snapshot status $D/s-etcdctl.db -w table) <($FK snapshot status $D/s-etcdctl.db -w table) && echo "status table identical"
  for tool in etcdctl ferrokv; do
    rm -rf $D/r-$tool
    t0=$(date +%s.%N)
    if [ $tool = etcdctl ]; then etcdctl snapshot restore $D/s-etcdctl.db --data-dir $D/r-$tool > /dev/null 2>&1; else $FK snapshot restore $D/s-etcdctl.db --data-dir $D/r-$tool > /dev/null 2>&1; fi
    echo "$KIND file, $tool snapshot restore: rc=$? $(python3 -c "print(round($(date +%s.%N)-$t0,2))") s"
  done
done
