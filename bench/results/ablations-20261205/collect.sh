#!/usr/bin/env bash
# Copies the finished trials of the cnn-ablations sweep (store given as $1, default /work/abl/store) into this folder
# and prints one markdown row per trial: the patch it applied, its seed, final arch, fused parameters, test accuracy.
set -euo pipefail
store=${1:-/work/abl/store}
here=$(cd "$(dirname "$0")" && pwd)
for report in "$store"/runs/cnn-ablations-20261205-t*/final/report.json; do
  trial=$(basename "$(dirname "$(dirname "$report")")")
  mkdir -p "$here/$trial"
  cp "$report" "$here/$trial/report.json"
  cp "$(dirname "$report")/curves.png" "$here/$trial/curves.png" 2>/dev/null || true
  cp "$store/runs/$trial/spec.json" "$here/$trial/spec.json"
done
python3 - "$here" <<'PY'
import json, sys, glob, os
here = sys.argv[1]
print("| trial | growth options | seed | final arch | fused params | test acc | wall s |")
print("|---|---|---:|---|---:|---:|---:|")
for d in sorted(glob.glob(os.path.join(here, "cnn-ablations-20261205-t*"))):
    spec = json.load(open(os.path.join(d, "spec.json")))
    r = json.load(open(os.path.join(d, "report.json")))
    g = spec["growth"]
    opts = f'{g.get("depthPlacement")}, {g.get("branchSampling")}, init {g["init"].get("strategy")}' \
           f'{" preserve" if g["init"].get("preserveFunction") else ""}, optimizer {g.get("optimizerMigration")}'
    print(f'| {os.path.basename(d)[-4:]} | {opts} | {spec["seed"]} | {r["finalArch"]} | {r["parametersFused"]:,} | '
          f'{100 * r["accuracy"]:.2f} % | {r["wallSeconds"]:,.0f} |')
PY
