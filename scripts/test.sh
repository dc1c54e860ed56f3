#!/usr/bin/env bash
# Runs the whole test suite: set-up (idempotent), build, tests, then the format check; ends with a plain
# "N passed, N failed" line computed from the test results (TRX), the format check counted as one more. Extra
# arguments go to `dotnet test` (e.g. --filter "FullyQualifiedName~Growth").
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

# House style (.editorconfig, docs/architecture.md "House style"): `dotnet format` must find nothing to change. It runs
# after the build above (restored, so --no-restore) and counts as one check: passed or failed in the last line.
format_log="$results/format.log"
mkdir -p "$results"
format_start=$SECONDS
if dotnet format ScaleGrow.sln --verify-no-changes --no-restore >"$format_log" 2>&1
then
  format_failed=0
  echo "format check passed ($((SECONDS - format_start)) s)"
else
  format_failed=1
  echo "format check failed ($((SECONDS - format_start)) s); run \`dotnet format ScaleGrow.sln\` to fix these files:"
  # Lines read "/path/File.cs(line,col): error WHITESPACE|IMPORTS|IDE…: …"; anything else (a load failure) as is.
  files=$(grep -oE '[^ (]+\.cs\([0-9]+,[0-9]+\)' "$format_log" | sed 's/(.*//; s|^'"$root"'/||' | sort -u)
  if [ -n "$files" ]; then sed 's/^/  /' <<<"$files"; else tail -n 20 "$format_log"; fi
fi

failures
[ "$format_failed" -eq 1 ] && echo "FAILED dotnet format --verify-no-changes"
read -r passed failed skipped < <(summary)
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # The build or the test host failed before any result was written: count it as a failure.
  failed=1
fi
if [ "$format_failed" -eq 1 ]; then failed=$((failed + 1)); else passed=$((passed + 1)); fi
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
