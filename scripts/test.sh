#!/usr/bin/env bash
# Runs the whole test suite: set-up (idempotent), build, tests; ends with a plain "N passed, N failed" line computed
# from the test results (TRX). Extra arguments go to `dotnet test` (e.g. --filter "FullyQualifiedName~Growth").
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
results="$root/.test-results"

if ! scripts/setup.sh test; then
  echo "set-up failed"
  echo "0 passed, 1 failed"
  exit 1
fi

rm -rf "$results"
dotnet test ScaleGrow.sln -c Release --logger "trx;LogFileName=results.trx" --results-directory "$results" \
  --logger "console;verbosity=normal" "$@"
status=$?

summary() {
  # Sum the <Counters .../> of every TRX file the run wrote.
  local p=0 f=0 s=0 line
  while IFS= read -r line; do
    local cp cf ce ct
    cp=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$line")
    cf=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$line")
    ce=$(sed -n 's/.* error="\([0-9]*\)".*/\1/p' <<<"$line")
    ct=$(sed -n 's/.* notExecuted="\([0-9]*\)".*/\1/p' <<<"$line")
    p=$((p + ${cp:-0})); f=$((f + ${cf:-0} + ${ce:-0})); s=$((s + ${ct:-0}))
  done < <(find "$results" -name '*.trx' -exec grep -ho '<Counters [^>]*>' {} + 2>/dev/null)
  echo "$p $f $s"
}
failures() {
  # Name every failed test and the first line of its message, so a log's tail says what failed.
  find "$results" -name '*.trx' -print0 2>/dev/null | xargs -0 -r python3 -c '
import sys, xml.etree.ElementTree as ET
ns = "{http://microsoft.com/schemas/VisualStudio/TeamTest/2010}"
for path in sys.argv[1:]:
    for r in ET.parse(path).getroot().iter(ns + "UnitTestResult"):
        if r.get("outcome") != "Failed": continue
        m = r.find(ns + "Output/" + ns + "ErrorInfo/" + ns + "Message")
        first = (m.text or "").strip().splitlines()[0][:300] if m is not None and m.text else ""
        print("FAILED " + r.get("testName", "?") + (" :: " + first if first else ""))
' 2>/dev/null || true
}
failures
read -r passed failed skipped < <(summary)
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # The build or the test host failed before any result was written: count it as a failure.
  failed=1
fi
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
