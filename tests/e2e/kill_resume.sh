#!/usr/bin/env bash
# SIGKILL a whole release (pipelines/release.lua against the real peers) at each point
# where a kill used to leave a run that could never be resumed, resuming after each;
# the finished run must equal one never killed: the same tags (trees), release branch,
# uploads, .crate contents, pull request and GitHub releases. Then a bounded
# randomised loop of kills over another release, counting double publishes in the
# registry's log (there must be none).
#
# The kills are deterministic: CDP_TEST_PAUSE stops cdp at a named point
# (src/test_point.c) and the test kills its process group there.
#   write:…/Cargo.toml         Version wrote a manifest's temporary file, not renamed yet
#   commit:…changelogs         Package wrote the changelogs, and has not committed them
#   push:…origin.git           Tag's objects going to the path remote
#   (registry stall)           Publish's upload stored by the registry, its answer held back
# KILL_LOOP (default 20) sets how many random kills the loop makes, KILL_SEED its seed;
# KILL_KEEP=1 keeps the work directory for a look afterwards.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
CDP=${CDP:-$here/build/cdp}
case $CDP in /*) ;; *) CDP=$here/$CDP ;; esac
PIPELINE=$here/pipelines/release.lua
export PATH=$HOME/.cargo/bin:$PATH
TOKEN=kill-e2e-token-3f0a
KILL_LOOP=${KILL_LOOP:-20}
KILL_SEED=${KILL_SEED:-$(( $(date +%s) % 32768 ))}
work=$(mktemp -d /tmp/cdp-kill.XXXXXX)
servers=()
cleanup() {
  [[ -n ${cdp_pid:-} ]] && kill -KILL -- "-$cdp_pid" 2>/dev/null || true
  bash "$here/tests/fixtures/peers.sh" stop "$work/peers" 2>/dev/null || true
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  [[ -n ${KILL_KEEP:-} ]] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
pass=0
ok() { pass=$((pass + 1)); echo "ok - $* (${SECONDS}s)"; }
fail() { echo "FAIL - $*"; exit 1; }

bash "$here/tests/fixtures/peers.sh" start "$work/peers" "$TOKEN"
source "$work/peers/peers.env"

# One history, copied for every release, so that every release releases the same commits.
bash "$here/tests/fixtures/workspace_demo.sh" "$work/template" >/dev/null

port_of() { for _ in $(seq 300); do grep -q PORT "$1" 2>/dev/null && break; sleep 0.1; done; awk '/PORT/ {print $2}' "$1"; }

# scenario NAME: a copy of the template with its own registry and forge stand-in (in front
# of the shared Prism); cd into its work tree. Sets REG and FORGE.
scenario() {
  local dir=$work/$1
  cp -a "$work/template" "$dir"
  git -C "$dir/work" remote set-url origin "$dir/origin.git"
  python3 "$here/tests/fixtures/registry.py" --root "$dir/registry" --token "$TOKEN" >"$dir/registry.port" 2>"$dir/registry.log" &
  servers+=($!)
  python3 "$here/tests/fixtures/forge_stub.py" --prism "http://127.0.0.1:$PRISM_PORT" --root "$dir/forge" \
    --token "$TOKEN" --repo demo-org/demo >"$dir/forge.port" 2>"$dir/forge.log" &
  servers+=($!)
  REG=http://127.0.0.1:$(port_of "$dir/registry.port")
  FORGE=http://127.0.0.1:$(port_of "$dir/forge.port")
  cd "$dir/work"
}
peers_env=()
set_env() {
  peers_env=(GITHUB_TOKEN=$TOKEN CARGO_REGISTRY_TOKEN=$TOKEN CDP_FORGE_API=$FORGE CDP_FORGE_REPO=demo-org/demo
    CDP_REGISTRY_INDEX="sparse+$REG/index/" CDP_REGISTRY_LIMITS=none)
}
# cdp ARGS...: in its own process group (a kill takes cargo with it), output to $log.
start_cdp() {
  set_env
  env "${peers_env[@]}" "$@" setsid "$CDP" "${cdp_args[@]}" </dev/null >>"$log" 2>&1 &
  cdp_pid=$!
}
wait_cdp() { local code=0; { wait "$cdp_pid"; } 2>/dev/null || code=$?; cdp_pid=; return $code; }
alive() { local st; st=$(ps -o stat= -p "$cdp_pid" 2>/dev/null) && [[ $st != Z* ]]; }
release() { cdp_args=("$PIPELINE" --phase 3); start_cdp "$@"; wait_cdp; }
resume() { cdp_args=(resume "$1"); start_cdp; wait_cdp; }
run_id() { "$CDP" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["run"])'; }
# The world the release in the current scenario left, as JSON.
state() {
  local dir; dir=$(cd .. && pwd)
  "$CDP" status --json >"$dir/status.json"
  python3 "$here/tests/fixtures/release_state.py" --origin "$dir/origin.git" --registry "$dir/registry" \
    --forge "$FORGE" --status "$dir/status.json"
}
# kill_at POINT [ARGS]: start cdp (a release, or ARGS: a resume) that pauses at POINT,
# check the pause is cdp's, SIGKILL its process group there. The pause file holds
# "PID KIND DETAIL"; $paused_at is "KIND DETAIL".
kill_at() {
  local pause=$work/pause
  rm -f "$pause"
  if [[ $# -gt 1 ]]; then cdp_args=("${@:2}"); else cdp_args=("$PIPELINE" --phase 3); fi
  start_cdp CDP_TEST_PAUSE="$1" CDP_TEST_PAUSE_FILE="$pause"
  for _ in $(seq 3000); do [[ -e $pause ]] && break; alive || break; sleep 0.1; done
  [[ -e $pause ]] || { cat "$log"; fail "cdp never reached $1"; }
  [[ $(cut -d' ' -f1 "$pause") == "$cdp_pid" ]] || fail "the pause is not cdp's: $(cat "$pause")"
  kill -KILL -- "-$cdp_pid"
  wait_cdp || true
  paused_at=$(cut -d' ' -f2- "$pause")
}
same_as_reference() { # NAME
  state >"$work/$1.json"
  diff -u "$work/reference.json" "$work/$1.json" >&2 || fail "$1: the resumed release differs from the one never killed"
}

# The reference: a release never killed.
scenario reference
log=$work/reference.log
release || { cat "$log"; fail "the reference release failed"; }
state >"$work/reference.json"
python3 - "$work/reference.json" <<'EOF' || fail "the reference release is not whole"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["run"] == "done", s["run"]
assert s["uploads"] == ["demo-util@1.0.1:200", "demo-core@0.1.1:200", "demo-cli@0.2.0:200"], s["uploads"]
assert len(s["forge"]["pulls"]) == 1 and len(s["forge"]["releases"]) == 3, s["forge"]
assert {"demo-cli-v0.2.0", "demo-core-v0.1.1", "demo-util-v1.0.1"} <= set(s["tags"]), s["tags"]
EOF
ok "the reference release: three crates uploaded once, three tags, a pull request, three releases"

# One release killed at each point in turn, each kill resumed: it must end as the
# release never killed.
scenario points
log=$work/points.log

# 1. During a manifest write: the temporary file is written, the rename not done.
kill_at "write:crates/demo-cli/Cargo.toml"
run=$(run_id)
fork=$(pwd)/.cdp/runs/$run/fork
[[ $paused_at == "write $fork/crates/demo-cli/Cargo.toml" ]] || fail "paused at $paused_at"
ls -A "$fork/crates/demo-cli" | grep -q '^\.Cargo\.toml\.cdp-' || fail "no temporary manifest was left to heal"
ok "killed while Version wrote a manifest: its .Cargo.toml.cdp-* is left in the fork"

# 2. After the changelogs are written, before Package commits them.
kill_at "commit:chore(release): changelogs" resume "$run"
[[ $paused_at == "commit chore(release): changelogs for demo-cli 0.2.0"* ]] || fail "paused at $paused_at"
[[ -n $(git -C "$fork" status --porcelain -- crates/demo-core/CHANGELOG.md) ]] || fail "no changelog left uncommitted"
ok "resumed past it, then killed after Package wrote the changelogs and before its commit"

# 3. During the tag push to the path remote; then a push killed between locking a tag and
#    renaming the lock (libgit2 offers no point there: the lock is placed as git leaves it).
kill_at "push:$work/points/origin.git" resume "$run"
[[ -z $(git -C "$work/points/origin.git" tag -l 'demo-cli-v0.2.0' 'demo-core-v0.1.1' 'demo-util-v1.0.1') ]] \
  || fail "the tags were pushed before the kill"
lock=$work/points/origin.git/refs/tags/demo-core-v0.1.1.lock
git -C "$fork" rev-parse refs/tags/demo-core-v0.1.1 >"$lock"
if resume "$run"; then fail "a resume over a stale lock passed"; fi
grep -q "push to $work/points/origin.git: a previous push was interrupted; remove $lock if no git process is running" "$log" \
  || { tail -n 20 "$log"; fail "the stale lock is not named"; }
[[ $("$CDP" status --json "$run" | python3 -c 'import json,sys; print([s["state"] for s in json.load(sys.stdin)["stages"] if s["name"] == "tag"][0])') == failed ]] \
  || fail "Tag is not the failed stage"
rm "$lock"
ok "resumed past it, killed during the tag push to the path remote; a stale tag lock is named with what to do"

# 4. Mid-upload: the registry has stored demo-core, cdp never hears back.
curl -sf -X POST "$REG/_control" -d '{"stall": {"crate": "demo-core", "seconds": 600}}' >/dev/null
cdp_args=(resume "$run")
start_cdp
for _ in $(seq 3000); do
  curl -sf "$REG/_log" | grep -q '"demo-core"' && break
  alive || break
  sleep 0.1
done
curl -sf "$REG/_log" | grep -q '"demo-core"' || { cat "$log"; fail "demo-core was never uploaded"; }
kill -KILL -- "-$cdp_pid"
wait_cdp || true
ok "resumed past it, killed mid-upload: demo-core stored by the registry, its answer never seen"

resume "$run" || { cat "$log"; fail "the last resume failed"; }
same_as_reference points
# A new run reuses the healed fork (Activate's outputs are cached) and has nothing to do.
release || { cat "$log"; fail "a new run after the resumed one failed"; }
[[ $(tail -n 12 "$log" | grep -c ' cached$') == 8 ]] || { tail -n 20 "$log"; fail "the new run ran stages"; }
ok "the release killed at all four points resumed to the one never killed (same tags, branch, uploads, .crate files, PR, releases); a new run runs nothing"

# 5. Random kills over one release: KILL_LOOP kills at random moments, each followed by a
#    resume (or a new run when the kill came before the run was recorded), then a last
#    resume left to finish.
scenario random
log=$work/random.log
RANDOM=$KILL_SEED
run_state() { "$CDP" status --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' 2>/dev/null || echo none; }
kills=0 attempts=0
while (( kills < KILL_LOOP && attempts < 3 * KILL_LOOP )); do
  attempts=$((attempts + 1))
  st=$(run_state)
  [[ $st == done ]] && break
  # a kill before the run was recorded leaves nothing to resume: start it again
  if [[ $st == none ]]; then cdp_args=("$PIPELINE" --phase 3); else cdp_args=(resume "$(run_id)"); fi
  start_cdp
  sleep "$((RANDOM % 20 / 10)).$((RANDOM % 10))"
  if alive && kill -KILL -- "-$cdp_pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait_cdp || true
done
if [[ $("$CDP" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])') != done ]]; then
  resume "$(run_id)" || { tail -n 40 "$log"; fail "random: the last resume failed (seed $KILL_SEED)"; }
fi
doubles=$(curl -sf "$REG/_log" | python3 -c '
import collections, json, sys
ok = collections.Counter((r["name"], r["vers"]) for r in json.load(sys.stdin) if r["status"] == 200)
print(sum(n - 1 for n in ok.values() if n > 1))')
echo "random: $kills kills (seed $KILL_SEED), $doubles double publishes"
[[ $doubles == 0 ]] || fail "random: $doubles double publishes (seed $KILL_SEED)"
same_as_reference random
ok "$kills random kills over one release (seed $KILL_SEED): 0 double publishes, and the release equals the one never killed"

echo "kill_resume: $pass passed"
