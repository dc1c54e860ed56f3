#!/bin/bash
# The record of how the 2026-12-06 late runs were started (kept as run; works in that VM's worktree /work/wtb only).
cd /work/wtb
B=bench/ScaleGrow.Bench/bin/Release/net10.0/ScaleGrow.Bench
P=/work/chain21/chain.progress
lscpu | grep "Model name" >> $P
run() { tag=$1; shift; args="$*"
  echo "$(date -u +%H:%M:%S) start $tag: $args" >> $P
  CI=true ./scalegrow $args --json --out bench/work/$tag > bench/work/$tag.stdout 2> bench/work/$tag.log
  rc=$?
  echo "$(date -u +%H:%M:%S) end $tag rc=$rc" >> $P
  $B record-command --tag $tag --args "$args" >> $P 2>&1
}
run grow-fashion-resnet-continue-s1 grow --spec bench/work/fashion-resnet-w24-ft8-continue.json --seed 1
run grow-fashion-resnet-continue-s2 grow --spec bench/work/fashion-resnet-w24-ft8-continue.json --seed 2
run grow-quick-continue-s1 grow --spec bench/work/quick-continue.json --seed 1
run grow-quick-continue-s2 grow --spec bench/work/quick-continue.json --seed 2
echo "$(date -u +%H:%M:%S) chain done" >> $P
