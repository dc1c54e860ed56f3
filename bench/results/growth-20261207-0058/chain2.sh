#!/bin/bash
P=/work/chain22/chain.progress
while ! grep -q "chain done" $P; do sleep 20; done
cd /work/wtb
B=bench/ScaleGrow.Bench/bin/Release/net10.0/ScaleGrow.Bench
run() { tag=$1; shift; args="$*"
  echo "$(date -u +%H:%M:%S) start $tag: $args" >> $P
  CI=true ./scalegrow $args --json --out bench/work/$tag > bench/work/$tag.stdout 2> bench/work/$tag.log
  rc=$?
  echo "$(date -u +%H:%M:%S) end $tag rc=$rc" >> $P
  $B record-command --tag $tag --args "$args" >> $P 2>&1
}
run grow-fashion-resnet-half-s3 grow --spec bench/work/fashion-resnet-half.json --seed 3
echo "$(date -u +%H:%M:%S) chain2 done" >> $P
