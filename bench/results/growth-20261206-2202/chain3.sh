#!/bin/bash
# The record of how the 2026-12-06 late runs were started (kept as run; works in that VM's worktree /work/wtb only).
# chain3 (a restart seed 3 of fashion-resnet) was stopped before it started a run: no time left in the session.
cd /work/wtb
P=/work/chain21/chain.progress
until grep -q "chain2 done" $P; do sleep 20; done
B=bench/ScaleGrow.Bench/bin/Release/net10.0/ScaleGrow.Bench
run() { tag=$1; shift; args="$*"
  echo "$(date -u +%H:%M:%S) start $tag: $args" >> $P
  CI=true ./scalegrow $args --json --out bench/work/$tag > bench/work/$tag.stdout 2> bench/work/$tag.log
  rc=$?
  echo "$(date -u +%H:%M:%S) end $tag rc=$rc" >> $P
  $B record-command --tag $tag --args "$args" >> $P 2>&1
}
run grow-fashion-resnet-w24-ft8-s3 grow --spec bench/work/fashion-resnet-w24-ft8.json --seed 3
echo "$(date -u +%H:%M:%S) chain3 done" >> $P
