#!/usr/bin/env bash
# SIGTERM during a run: rldt finishes the current iteration, writes its metrics, the policy and a
# checkpoint, says so (with the resume command), and exits with 128 + 15. Polls for progress (no timing assumptions beyond a generous
# upper bound on how long the first iteration may take).
#   cli_signal_test.sh <rldt> <config> <run dir>
set -u
cli="$1" config="$2" dir="$3"
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
"$cli" scratch --config "$config" --out "$dir" n_train_itr=100000 >"$dir.log" 2>&1 &
pid=$!
for _ in $(seq 1 1200); do  # up to 10 minutes for two iterations
  [ -f "$dir/metrics.csv" ] && [ "$(wc -l <"$dir/metrics.csv")" -ge 3 ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.5
done
kill -TERM "$pid"
wait "$pid"
rc=$?
cat "$dir.log"
fail() { echo "FAIL: $*"; exit 1; }
[ "$rc" -eq 143 ] || fail "exit code $rc, expected 143"
grep -q "stopped by SIGTERM" "$dir.log" || fail "no stop message"
[ -f "$dir/policy.pt" ] || fail "policy.pt not written"
[ -f "$dir/checkpoint.pt" ] || fail "checkpoint.pt not written"
grep -q "resume with: rldt scratch --resume $dir" "$dir.log" || fail "the stop message does not say how to resume"
grep -q '"status": "interrupted' "$dir/run.json" || fail "run.json status not 'interrupted'"
rows=$(($(wc -l <"$dir/metrics.csv") - 1))
[ "$rows" -ge 2 ] || fail "metrics.csv has $rows rows"
echo "OK: stopped after $rows iterations"
