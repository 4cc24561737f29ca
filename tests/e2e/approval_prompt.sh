#!/usr/bin/env bash
# The approval prompt as a person at a terminal meets it (tmux): in phase 1 every
# stage's outputs are shown before the run goes on, with the pipeline's secrets
# redacted, and answered with a key. Approving each one finishes the run; "s" shows
# the whole outputs; "r" rejects and fails the run (exit 1) with nothing after it
# run; Ctrl-D leaves the gate open, so the run pauses and `cdp approve` then
# `cdp resume` finish it without a terminal. The journal says who approved, where.
NAME=approval
source "$(dirname "$0")/../fixtures/e2e.sh"
sock="cdp-approval-$$-$RANDOM"
at_exit "tmux -L $sock kill-server 2>/dev/null"
SECRET=approval-secret-7c1e
# Three stages; the first gives 30 items (the prompt shows 20 lines, "s" the rest)
# and the pipeline's secret, which the prompt must show redacted.
cat >"$work/approval.lua" <<'LUA'
return cdp.pipeline {
  name = "approval",
  phase = 1,
  settings = { token = cdp.pipeline.secret("APPROVAL_TOKEN") },
  stages = {
    { name = "list", gives = { "items" }, run = function(ctx)
        local list = {}
        for i = 1, 30 do
          list[i] = ("item-%02d"):format(i)
        end
        return { items = { list = list, token = ctx.settings.token } }
      end },
    { name = "count", needs = { "items" }, gives = { "count" },
      run = function(_, inputs) return { count = { n = #inputs.items.list } } end },
    { name = "report", needs = { "count" }, gives = { "report" },
      run = function(_, inputs) return { report = { text = inputs.count.n .. " items" } } end },
  },
}
LUA
screen() { tmux -L "$sock" capture-pane -p -J -S - -t run; }
# until COMMAND succeeds, for at most 60 seconds (cdp runs stages between prompts)
wait_until() {
  local deadline=$((SECONDS + 60))
  until eval "$1"; do
    ((SECONDS < deadline)) || { echo "--- screen ---"; screen; fail "timed out waiting for: $1"; }
    sleep 0.05
  done
}
prompts() { screen | grep -c '^Approve .*\[a\]pprove, \[r\]eject, \[s\]how more: ' || true; }
exited() { screen | grep -q '^exited with '; }
exit_code() { screen | awk '/^exited with / {print $3}'; }
# start: the pipeline in phase 1 in a fresh repository, on a terminal of its own.
start() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  rm -rf "$work/repo" && git init -q "$work/repo"
  local cmd
  cmd=$(printf '%q ' env APPROVAL_TOKEN="$SECRET" "$CDP" "$work/approval.lua")
  tmux -L "$sock" new-session -d -s run -x 160 -y 50 -c "$work/repo" "$cmd; echo \"exited with \$?\"; sleep 600"
  wait_until '[ "$(prompts)" -ge 1 ]'
}
# answer KEYS: type KEYS and Enter at the prompt, then wait for the next prompt or the end.
answer() {
  local before
  before=$(prompts)
  tmux -L "$sock" send-keys -t run -l -- "$1"
  tmux -L "$sock" send-keys -t run Enter
  wait_until "exited || [ \"\$(prompts)\" -gt $before ]"
}
stages() { (cd "$work/repo" && "$CDP" status --json | json '" ".join(s["name"] + ":" + s["state"] for s in d["stages"])'); }

# 1. Approve every output: the run finishes, and the journal has who and where;
# what one stage counted reaches the next as the integer it was (30, not 30.0).
start
screen | grep -q '^stage list outputs:' || fail "the first prompt does not say whose outputs it shows"
answer s
screen | grep -q '"token": "\*\*\*"' || { screen; fail "the secret in the outputs was not shown redacted"; }
n=0
until exited; do
  answer a
  n=$((n + 1))
  ((n < 10)) || fail "more than 10 prompts"
done
[[ $(exit_code) == 0 ]] || { screen; fail "approving every output: exit $(exit_code)"; }
! screen | grep -q "$SECRET" || fail "the secret reached the terminal"
screen | grep -q '"text": "30 items"' || { screen; fail "a count read back from the journal is not the integer it was"; }
[[ $(stages) == "list:passed count:passed report:passed" ]] || fail "stages: $(stages)"
[[ $n == 3 ]] || fail "$n prompts for three stages' outputs"
journal=$(ls "$work"/repo/.cdp/runs/*/journal.ndjson)
granted=$(grep -c '"event":"approval.granted"' "$journal")
[[ $granted == "$n" ]] || fail "$n answers, $granted approvals in the journal"
grep '"event":"approval.granted"' "$journal" | grep -q '"note":"on the terminal"' || fail "the journal does not say the approval came from the terminal"
! grep -q "$SECRET" "$journal" || fail "the secret is in the journal"
ok "phase 1 on a terminal: $n outputs shown and approved with 'a', the secret redacted on screen and in the journal"

# 2. "s" shows every line, "r" rejects: exit 1, the stages after it never ran.
start
[[ $(screen | grep -c 'item-') -lt 30 ]] || fail "the outputs were not cut at 20 lines"
screen | grep -q '… [0-9]* more lines (s: show more)' || { screen; fail "no 'more lines' hint"; }
answer s
screen | grep -q 'item-30' || { screen; fail "'s' did not show the whole outputs"; }
answer r
wait_until exited
[[ $(exit_code) == 1 ]] || { screen; fail "a rejection exited $(exit_code), expected 1"; }
screen | grep -q 'outputs of stage list rejected' || { screen; fail "the rejection is not named"; }
[[ $(stages) == *"count:pending report:pending" ]] || fail "stages after a rejection: $(stages)"
grep -q '"event":"approval.rejected"' "$work"/repo/.cdp/runs/*/journal.ndjson || fail "no approval.rejected in the journal"
ok "'s' shows the outputs past 20 lines; 'r' fails the run with exit 1, naming the stage, nothing run after it"

# 3. Ctrl-D at the prompt: the gate stays open and the run pauses; approved and
# resumed without a terminal, it finishes.
start
tmux -L "$sock" send-keys -t run C-d
wait_until exited
screen | grep -q "cdp approve " || { screen; fail "the paused run does not say how to approve it"; }
# off the terminal every gate is a pause (exit 3) until `cdp approve`; three gates in all
code=3 rounds=0
while [[ $code == 3 && $rounds -lt 5 ]]; do
  (cd "$work/repo" && "$CDP" approve last --note "from the script" >>"$work/approve.log" 2>&1) \
    || { cat "$work/approve.log"; fail "cdp approve"; }
  set +e
  (cd "$work/repo" && APPROVAL_TOKEN=$SECRET "$CDP" resume last </dev/null >>"$work/resume.log" 2>&1)
  code=$?
  set -e
  rounds=$((rounds + 1))
done
[[ $code == 0 && $rounds == 3 ]] || { cat "$work/approve.log" "$work/resume.log"; fail "resume exit $code after $rounds approvals"; }
[[ $(stages) == "list:passed count:passed report:passed" ]] || fail "stages: $(stages)"
ok "Ctrl-D leaves the gate open: the run pauses, naming cdp approve; approved and resumed off the terminal it finishes"

echo "approval_prompt: $pass passed"
