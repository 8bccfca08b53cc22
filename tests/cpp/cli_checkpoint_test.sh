#!/usr/bin/env bash
# Checkpoints through the rldt command:
#   4 iterations straight  ==  2 iterations + `--resume` to 4   (metrics.csv equal apart from timing columns)
#   a resume that changes the config is refused (exit 2), so is a truncated checkpoint (exit 2, file named);
#   `rldt export` writes a policy file that `rldt eval` runs.
#   cli_checkpoint_test.sh <rldt> <config> <work dir>
set -u
cli="$1" config="$2" work="$3"
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
# An evaluation (itr 2), the end of the critic warm-up (the actor first trains in itr 3) and the
# actor's lr warm-up fall into the resumed half.
# eval_episodes: whole-episode evaluations at itr 0 and 2, so best_policy.pt is chosen across the resume.
common=(val_freq=2 n_critic_warmup_itr=1 actor.lr_warmup_steps=8 n_steps=30 eval_episodes=3)
run() {  # run <expected rc> <log> args...
  local want="$1" log="$2"
  shift 2
  "$cli" "$@" >"$log" 2>&1
  local rc=$?
  cat "$log"
  [ "$rc" -eq "$want" ] || fail "exit code $rc, expected $want: rldt $*"
}
strip_cols() {  # strip_cols <metrics.csv> <regex>: the file without the columns whose name matches
  awk -F, -v re="$2" 'NR == 1 { for (i = 1; i <= NF; ++i) keep[i] = ($i !~ re) }
           { line = ""; for (i = 1; i <= NF; ++i) if (keep[i]) line = line $i ","; print line }' "$1"
}
strip_timing() { strip_cols "$1" '^seconds_'; }  # metrics.csv without the seconds_* columns

run 2 "$work/bad_freq.log" scratch --config "$config" --out "$work/bad" checkpoint_freq=0
grep -q "key 'checkpoint_freq': checkpoint_freq must be >= 1" "$work/bad_freq.log" || fail "no message for checkpoint_freq=0"
run 0 "$work/straight.log" scratch --config "$config" --out "$work/straight" n_train_itr=4 "${common[@]}"
run 0 "$work/first.log" scratch --config "$config" --out "$work/resumed" n_train_itr=2 "${common[@]}"
[ -f "$work/resumed/checkpoint.pt" ] || fail "no checkpoint.pt after the first half"
[ ! -e "$work/resumed/checkpoint.pt.tmp" ] || fail "a temporary checkpoint was left behind"
# The BLAS thread count is recorded; resuming with another one says that the run will not repeat
# bit for bit (OpenBLAS rounds differently), resuming with the same one says nothing.
threads=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("blas_threads", -1))' "$work/resumed/run.json")
[ "$threads" -ge 0 ] 2>/dev/null || fail "run.json does not record blas_threads"
if [ "$threads" -gt 0 ]; then
  other=$((threads == 1 ? 2 : 1))
  cp -r "$work/resumed" "$work/other_threads"
  OPENBLAS_NUM_THREADS=$other run 0 "$work/other_threads.log" scratch --resume "$work/other_threads" n_train_itr=3
  grep -q "note: this run started with $threads BLAS thread(s) and continues with $other;.*OPENBLAS_NUM_THREADS=$threads" \
    "$work/other_threads.log" || fail "no note for a resume with another BLAS thread count"
  python3 -c 'import json, sys; assert json.load(open(sys.argv[1]))["resumed"][-1]["blas_threads"] == int(sys.argv[2])' \
    "$work/other_threads/run.json" "$other" || fail "run.json does not record the resumed run's BLAS threads"
fi
# A row past the checkpoint (as a crash after the row was written would leave) is dropped on resume.
tail -n 1 "$work/resumed/metrics.csv" | sed 's/^1,/2,/' >>"$work/resumed/metrics.csv"
# A run folder of an older rldt, whose metrics.csv lacks the eval_q / eval_discounted_return columns.
cp -r "$work/resumed" "$work/old_columns"
new_cols='^(eval_q|eval_discounted_return)$'
strip_cols "$work/resumed/metrics.csv" "$new_cols" | sed 's/,$//' >"$work/old_columns/metrics.csv"
run 2 "$work/refused.log" scratch --resume "$work/resumed" n_train_itr=4 critic.lr=0.01
grep -q "key 'critic.lr': a resumed run keeps its config" "$work/refused.log" || fail "no message for a changed key"
run 0 "$work/second.log" scratch --resume "$work/resumed" n_train_itr=4
grep -q "resuming .* after iteration 1" "$work/second.log" || fail "no resume message"
! grep -q "BLAS thread" "$work/second.log" || fail "a note about BLAS threads though the count is the same"
diff <(strip_timing "$work/straight/metrics.csv") <(strip_timing "$work/resumed/metrics.csv") ||
  fail "metrics.csv of the resumed run differs from the uninterrupted one"
[ "$(wc -l <"$work/resumed/metrics.jsonl")" -eq 4 ] || fail "metrics.jsonl does not have 4 rows"
# The older folder resumes into today's columns: the old rows are kept by column name (the new
# columns empty there), the resumed rows are complete.
run 0 "$work/old_columns.log" scratch --resume "$work/old_columns" n_train_itr=4
[ "$(head -n 1 "$work/old_columns/metrics.csv")" = "$(head -n 1 "$work/straight/metrics.csv")" ] ||
  fail "a resumed older metrics.csv did not get today's header"
diff <(strip_cols "$work/straight/metrics.csv" "^seconds_|$new_cols") <(strip_cols "$work/old_columns/metrics.csv" "^seconds_|$new_cols") ||
  fail "a resumed older metrics.csv lost or moved values"
eval_q_of() {  # eval_q_of <metrics.csv> <iteration>
  awk -F, -v it="$2" 'NR == 1 { for (i = 1; i <= NF; ++i) col[$i] = i; next } $1 == it { print $col["eval_q"] }' "$1"
}
[ -z "$(eval_q_of "$work/old_columns/metrics.csv" 0)" ] || fail "an old row got an eval_q value"
[ -n "$(eval_q_of "$work/old_columns/metrics.csv" 2)" ] &&
  [ "$(eval_q_of "$work/old_columns/metrics.csv" 2)" = "$(eval_q_of "$work/straight/metrics.csv" 2)" ] ||
  fail "the resumed evaluation row lacks eval_q or differs from the uninterrupted run"
cmp -s "$work/straight/policy.pt" "$work/resumed/policy.pt" || echo "note: policy.pt files differ byte-wise (archive metadata)"
grep -q '"resumed"' "$work/resumed/run.json" || fail "run.json does not record the resume"
# The best evaluated policy: the same choice with and without the resume, and the metrics agree with it.
best() { python3 -c 'import json, sys; b = json.load(open(sys.argv[1]))["best_eval"]; print(b["iteration"], b["eval_return"])' "$1"; }
[ -f "$work/straight/best_policy.pt" ] && [ -f "$work/resumed/best_policy.pt" ] || fail "no best_policy.pt"
[ "$(best "$work/straight/run.json")" = "$(best "$work/resumed/run.json")" ] ||
  fail "best_eval differs: $(best "$work/straight/run.json") vs $(best "$work/resumed/run.json")"
want=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; ++i) col[$i] = i; next }
                $col["eval"] == 1 && (best == "" || $col["eval_return"] + 0 > best + 0) { best = $col["eval_return"]; it = $1 }
                END { print it }' "$work/straight/metrics.csv")
[ "$(best "$work/straight/run.json" | cut -d' ' -f1)" = "$want" ] || fail "best_eval is not the best row of metrics.csv (iteration $want)"
run 0 "$work/eval_best.log" eval --config "$work/resumed/config.yaml" --policy "$work/resumed/best_policy.pt" env_options.max_episode_steps=20

# Export: the actor of the checkpoint as a policy file for rldt eval.
run 0 "$work/export.log" export --checkpoint "$work/resumed/checkpoint.pt" --out "$work/exported.pt"
run 0 "$work/eval.log" eval --config "$work/resumed/config.yaml" --policy "$work/exported.pt" env_options.max_episode_steps=20
run 2 "$work/export_again.log" export --checkpoint "$work/resumed/checkpoint.pt" --out "$work/exported.pt"

# A truncated checkpoint: a clear error naming the file, exit code 2.
head -c 5000 "$work/resumed/checkpoint.pt" >"$work/cut.pt" && mv "$work/cut.pt" "$work/resumed/checkpoint.pt"
run 2 "$work/truncated.log" scratch --resume "$work/resumed" n_train_itr=6
grep -q "cannot resume: '.*resumed/checkpoint.pt' is not a readable rldt file (truncated or foreign)" "$work/truncated.log" ||
  fail "no clear message for a truncated checkpoint"
run 2 "$work/export_bad.log" export --checkpoint "$work/resumed/checkpoint.pt" --out "$work/other.pt"
run 2 "$work/wrong_command.log" finetune --resume "$work/straight"
grep -q "is a run of \`rldt scratch\`" "$work/wrong_command.log" || fail "no message for the wrong command"
echo "OK"
