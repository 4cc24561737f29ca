#!/usr/bin/env bash
# The engine end to end, as a release engineer drives it from a shell: runs
# live under the repository root (found from a subdirectory), a run killed
# with SIGKILL mid-stage resumes to the state of a run never killed, a phase 2
# run waits for `cdp approve`, and exit codes are the documented ones.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
CDP=${CDP:-$root/build/cdp}
case $CDP in /*) ;; *) CDP=$root/$CDP ;; esac
pipeline=$root/tests/fixtures/engine_basic.lua

work=$(mktemp -d /tmp/cdp-engine-e2e.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "engine_resume: $*" >&2; exit 1; }
expect_code() { # expect_code N cmd...
	local want=$1; shift
	set +e; "$@" >"$work/last.out" 2>&1; local got=$?; set -e
	[ "$got" -eq "$want" ] || { cat "$work/last.out" >&2; fail "'$*' exited $got, expected $want"; }
}
stages_of() { # the stage names, states and outputs of `cdp status --json`, one line
	python3 -c 'import json,sys; s=json.load(sys.stdin); assert set(s) >= {"run","state","stages"}, s; print(json.dumps([s["state"], [[t["name"], t["state"], t["outputs"]] for t in s["stages"]]], sort_keys=True))'
}

# exit codes in --help
"$CDP" --help | grep -q '^  3  a run stopped awaiting approval' || fail "--help does not document exit code 3"

# a reference run, never interrupted
git init -q "$work/ref"
mkdir -p "$work/ref/sub"
(cd "$work/ref/sub" && "$CDP" "$pipeline" </dev/null >/dev/null)
[ -f "$work/ref/.cdp/runs/"*/journal.ndjson ] || fail "the run was not recorded at the repository root"
[ ! -e "$work/ref/sub/.cdp" ] || fail ".cdp was created in the subdirectory"
reference=$(cd "$work/ref" && "$CDP" status --json | stages_of)

# killed with SIGKILL while stage test runs, then resumed
git init -q "$work/repo"
cd "$work/repo"
ENGINE_WAIT="test:$work/go" ENGINE_TRACE="$work/trace" "$CDP" "$pipeline" </dev/null >"$work/killed.out" 2>&1 &
pid=$!
pids+=("$pid")
for _ in $(seq 1 500); do [ -e "$work/go.started" ] && break; sleep 0.02; done
[ -e "$work/go.started" ] || fail "stage test never started"
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
"$CDP" status | grep -q 'interrupted' || fail "a killed run does not show as interrupted"
run=$("$CDP" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["run"])')
"$CDP" runs | grep -q "^$run " || fail "cdp runs does not list $run"
touch "$work/go"
expect_code 0 env ENGINE_TRACE="$work/trace" "$CDP" resume "$run"
[ "$(cat "$work/trace")" = "$(printf 'fetch\nbuild\ntest\ntest\npublish')" ] || fail "unexpected stages ran: $(cat "$work/trace")"
resumed=$("$CDP" status --json "$run" | stages_of)
[ "$resumed" = "$reference" ] || fail "resumed state differs: $resumed vs $reference"

# a killed run's children die with it; what left their process group is named on resume
git init -q "$work/orphans"
cd "$work/orphans"
# (setsid: a process group of its own, so that killing it kills only cdp, as a CI runner's cancel does)
ENGINE_SPAWN="test:$work/spawned" ENGINE_WAIT="test:$work/go2" setsid "$CDP" "$pipeline" </dev/null >"$work/orphans.out" 2>&1 &
pid=$!
pids+=("$pid")
for _ in $(seq 1 500); do [ -e "$work/go2.started" ] && break; sleep 0.02; done
[ -e "$work/go2.started" ] || fail "stage test never started"
in_group=$(sed -n 1p "$work/spawned")
escaped=$(sed -n 2p "$work/spawned")
pids+=("$escaped")
kill -0 "$in_group" && kill -0 "$escaped" || fail "the stage's processes did not start"
[ "$(ps -o pgid= "$pid" | tr -d ' ')" = "$pid" ] || fail "cdp is not in a process group of its own"
kill -KILL -- "-$pid"
wait "$pid" 2>/dev/null || true
gone=0
for _ in $(seq 1 250); do
	if ! kill -0 "$in_group" 2>/dev/null || [ "$(ps -o stat= "$in_group" | cut -c1)" = Z ]; then gone=1; break; fi
	sleep 0.02
done
[ "$gone" = 1 ] || fail "a child of the killed run outlived it (pid $in_group)"
kill -0 "$escaped" || fail "the process in its own session did not survive (the test cannot show the report)"
touch "$work/go2"
run=$("$CDP" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["run"])')
expect_code 0 "$CDP" resume "$run"
grep -q "1 process(es) of run $run from before it stopped are still running" "$work/last.out" \
	&& grep -q "pid $escaped: sleep 302" "$work/last.out" || { cat "$work/last.out" >&2; fail "resume does not name the orphan"; }
kill -KILL "$escaped"
cd "$work/repo"

# a second run runs nothing
rm "$work/trace"
expect_code 0 env ENGINE_TRACE="$work/trace" "$CDP" run "$pipeline"
[ ! -e "$work/trace" ] || fail "the second run ran: $(cat "$work/trace")"

# phase 2: waits for approval before publish
git init -q "$work/gated"
cd "$work/gated"
expect_code 3 "$CDP" "$pipeline" --phase 2
grep -q 'approval needed before stage publish' "$work/last.out" || fail "no approval.needed announcement"
expect_code 0 "$CDP" approve last --note "looks right"
expect_code 0 "$CDP" resume last
"$CDP" status | grep -q "approved before by .*: looks right" || fail "the approval is not shown"

# usage errors exit 2
expect_code 2 "$CDP" run
expect_code 2 "$CDP" run "$pipeline" --phase 9
echo "engine_resume: ok"
