#!/bin/bash
# The record of how the 2026-12-06 night runs were started, kept as run: it works in that VM's worktree (/work/wtb)
# only. Its "rc=" lines in chain.progress are not the runs' exit codes ($? there is the date substitution's);
# that each run succeeded shows in its report.json. To repeat a run, use the ./scalegrow commands in RESULTS §3.
cd /work/wtb
B=bench/ScaleGrow.Bench/bin/Release/net10.0/ScaleGrow.Bench
P=/work/chain20.progress
lscpu | grep "Model name" >> $P
run() { tag=$1; shift; args="$*"
  echo "$(date -u +%H:%M:%S) start $tag: $args" >> $P
  CI=true ./scalegrow $args --json --out bench/work/$tag > bench/work/$tag.stdout 2> bench/work/$tag.log
  echo "$(date -u +%H:%M:%S) end $tag rc=$?" >> $P
  $B record-command --tag $tag --args "$args" >> $P 2>&1
}
run oracle-fashion-resnet-s2 train --spec bench/work/oracle-fashion-resnet-s1.json --seed 2
run grow-fashion-vgg-s2 grow --preset fashion-vgg --seed 2
run grow-fashion-mbv3-s2 grow --preset fashion-mbv3 --seed 2
run train9-fashion-mbv3small-s2 train --preset fashion-mbv3small --seed 2 --epochs 9
echo "$(date -u +%H:%M:%S) chain done" >> $P
