#!/bin/bash
cd /work/wtb
B=bench/ScaleGrow.Bench/bin/Release/net10.0/ScaleGrow.Bench
P=/work/chain22/chain.progress
lscpu | grep "Model name" >> $P
run() { tag=$1; shift; args="$*"
  echo "$(date -u +%H:%M:%S) start $tag: $args" >> $P
  CI=true ./scalegrow $args --json --out bench/work/$tag > bench/work/$tag.stdout 2> bench/work/$tag.log
  rc=$?
  echo "$(date -u +%H:%M:%S) end $tag rc=$rc" >> $P
  $B record-command --tag $tag --args "$args" >> $P 2>&1
}
run grow-fashion-resnet-half-s1 grow --spec bench/work/fashion-resnet-half.json --seed 1
run grow-fashion-resnet-half-s2 grow --spec bench/work/fashion-resnet-half.json --seed 2
echo "$(date -u +%H:%M:%S) chain done" >> $P
