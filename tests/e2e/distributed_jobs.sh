#!/usr/bin/env bash
# pipelines/release.lua as one CI job per stage. `cdp export github-actions` writes the
# workflow; tests/fixtures/gha_runner.py runs its jobs in the order and with the
# environment the workflow gives them, each in a fresh clone with its own HOME and cargo
# target. The jobs share nothing but the bare remote and the peers (registry, the GitHub
# stand-in Prism validates). Publish has no long-lived registry token anywhere: it uses
# Trusted Publishing. The result is compared with a local run of the same workspace.
set -euo pipefail
NAME=dist
TOKEN=dist-e2e-token-5d21
OIDC_REQUEST=oidc-request-token-77aa
source "$(dirname "$0")/../fixtures/e2e.sh"
start_peers

# The distributed run's own registry, which knows no long-lived token: only tokens
# exchanged for a GitHub OIDC token of demo-org/demo's publish environment. And a
# GitHub stand-in of its own, on the same Prism.
python3 "$here/tests/fixtures/registry.py" --root "$work/reg2" --trusted demo-org/demo \
  --trusted-environment release-publish --oidc-request-token "$OIDC_REQUEST" >"$work/reg2.port" 2>"$work/reg2.log" &
background $!
REG2=$(wait_port "$work/reg2.port")
python3 "$here/tests/fixtures/forge_stub.py" --prism "http://127.0.0.1:$PRISM_PORT" --root "$work/forge2" \
  --token "$TOKEN" --repo demo-org/demo >"$work/forge2.port" 2>"$work/forge2.log" &
background $!
FORGE2=http://127.0.0.1:$(wait_port "$work/forge2.port")

publishes() { curl -sf "http://127.0.0.1:$1/_log" | json '" ".join("%s@%s:%d" % (r["name"], r["vers"], r["status"]) for r in d)'; }
releases() { curl -sf "$1/_state" | json '" ".join(sorted(r["tag_name"] for r in d["releases"]))'; }
pulls() { curl -sf "$1/_state" | json '" ".join("%s->%s" % (p["head"]["ref"], p["base"]["ref"]) for p in d["pulls"])'; }

# 1. The local run everything is compared with.
bash "$here/tests/fixtures/workspace_demo.sh" "$work/local" >/dev/null
(cd "$work/local/work" && env GITHUB_TOKEN=$TOKEN CARGO_REGISTRY_TOKEN=$TOKEN CDP_FORGE_API=$FORGE_API \
  CDP_FORGE_REPO=demo-org/demo CDP_REGISTRY_INDEX=$REGISTRY_INDEX CDP_REGISTRY_LIMITS=none \
  "$CDP" "$here/pipelines/release.lua" --phase 3 >"$work/local.log" 2>&1) || { cat "$work/local.log"; fail "the local run"; }
local_run=$(cd "$work/local/work" && "$CDP" status --json | json 'd["run"]')

# 2. The team's repository: the pipeline with its peers' settings, and the exported workflow.
bash "$here/tests/fixtures/workspace_demo.sh" "$work/team" >/dev/null
cd "$work/team/work"
mkdir -p pipelines
sed "s|^  settings = {},|  settings = { registry_index = \"sparse+http://127.0.0.1:$REG2/index/\", registry_limits = \"none\", forge_api = \"$FORGE2\", forge_repo = \"demo-org/demo\" },|" \
  "$here/pipelines/release.lua" >pipelines/release.lua
grep -q "127.0.0.1:$REG2" pipelines/release.lua || fail "the pipeline's settings were not written"
"$CDP" export github-actions pipelines/release.lua >"$work/export.log" || { cat "$work/export.log"; fail "export"; }
wf=$work/team/work/.github/workflows/cdp-release.yml
"$here/node_modules/.bin/action-validator" "$wf" >"$work/validator.log" 2>&1 || { cat "$work/validator.log"; fail "action-validator refused the workflow"; }
git add -A && git commit -qm "ci: release with cdp, one job per stage" && git push -q origin main
ok "the exported workflow passes action-validator and is committed with the pipeline"

mkdir -p "$work/bin" && ln -s "$CDP" "$work/bin/cdp"
cat >"$work/ctx.json" <<JSON
{"remote": "$work/team/origin.git", "sha": "$(git rev-parse HEAD)", "ref": "refs/heads/main",
 "repository": "demo-org/demo", "run_id": "4242", "run_attempt": "1", "actor": "dev", "token": "$TOKEN",
 "secrets": {}, "approved": ["release-publish"],
 "oidc": {"url": "http://127.0.0.1:$REG2/_oidc/token", "request_token": "$OIDC_REQUEST"},
 "env": {"PATH": "$work/bin:$HOME/.cargo/bin:/usr/local/bin:/usr/bin:/bin", "RUSTUP_HOME": "${RUSTUP_HOME:-$HOME/.rustup}",
         "GIT_CONFIG_NOSYSTEM": "1", "LANG": "C.UTF-8", "CDP_CARGO_OFFLINE": "true"}}
JSON
runner() { python3 "$here/tests/fixtures/gha_runner.py" "$wf" --context "$work/ctx.json" --work "$work/jobs" "$@"; }
run_id=4242-1
status_of() { (cd "$work/team/work" && "$CDP" status --run "$run_id" --json | json '[s["state"] for s in d["stages"] if s["name"]=="'"$1"'"][0]'); }

# 3. Every job, in the workflow's order.
jobs=$(runner order | tr '\n' ' ')
[[ $jobs == "activate validate test version package tag merge publish " ]] || fail "job order: $jobs"
for job in $jobs; do
  case $job in
  test)
    # killed mid-stage, as a lost runner is; the same job run again on a new runner finishes
    setsid python3 "$here/tests/fixtures/gha_runner.py" "$wf" --context "$work/ctx.json" --work "$work/jobs" \
      run test --name test-killed >/dev/null 2>&1 &
    killed=$!
    for _ in $(seq 600); do grep -q "cargo test" "$work/jobs/test-killed.log" 2>/dev/null && break; sleep 0.1; done
    grep -q "cargo test" "$work/jobs/test-killed.log" || { cat "$work/jobs/test-killed.log"; fail "the test job never started testing"; }
    kill -KILL -- "-$killed"
    wait "$killed" 2>/dev/null || true
    [[ $(status_of test) == running ]] || fail "the killed job's claim is not on the remote: $(status_of test)"
    runner run test --name test-again || { cat "$work/jobs/test-again.log"; fail "the test job run again"; }
    grep -q "taking over from pid" "$work/jobs/test-again.log" || { cat "$work/jobs/test-again.log"; fail "no takeover"; }
    ok "a job killed mid-stage leaves its claim; the job run again on another runner takes it over and finishes"
    ;;
  publish)
    # two copies of the same job, started together
    runner run publish --name publish-a & a=$!
    runner run publish --name publish-b & b=$!
    ra=0; rb=0
    wait "$a" || ra=$?
    wait "$b" || rb=$?
    uploads=$(cat "$work/jobs/publish-a.log" "$work/jobs/publish-b.log" | grep -c "publishing demo-util 1.0.1" || true)
    [[ $uploads == 1 ]] || { cat "$work/jobs/publish-a.log" "$work/jobs/publish-b.log"; fail "publish ran $uploads times"; }
    [[ $((ra == 0 || rb == 0)) == 1 ]] || { cat "$work/jobs/publish-a.log" "$work/jobs/publish-b.log"; fail "neither copy passed"; }
    if [[ $ra != 0 || $rb != 0 ]]; then
      cat "$work/jobs/publish-a.log" "$work/jobs/publish-b.log" | grep -Eq "another job|running in another job" \
        || { cat "$work/jobs/publish-a.log" "$work/jobs/publish-b.log"; fail "the losing copy does not say why"; }
    fi
    ok "two copies of the Publish job started together publish once; the other stops cleanly ($ra, $rb)"
    ;;
  *)
    runner run "$job" || { cat "$work/jobs/$job.log"; fail "job $job"; }
    ;;
  esac
done
[[ $(status_of publish) == passed ]] || fail "publish: $(status_of publish)"
(cd "$work/team/work" && "$CDP" status --run "$run_id") >"$work/status.log"
grep -q "run $run_id  pipeline release  done" "$work/status.log" || { cat "$work/status.log"; fail "cdp status --run"; }
ok "every stage ran as its own job; cdp status --run reads the finished run from the remote"

# Each job had only what the workflow gives it (read from the runner's records, in one go).
seen=$(python3 - "$work/jobs" $jobs <<'PY'
import json, os, sys
out = []
for job in sys.argv[2:]:
    for copy in (job, job + "-again", job + "-a"):
        path = os.path.join(sys.argv[1], copy + ".json")
        if os.path.exists(path):
            d = json.load(open(path))
            out.append("%s:%s:%s" % (job, d["environment"], "ACTIONS_ID_TOKEN_REQUEST_URL" in d["env"]))
            break
print(" ".join(out))
PY
)
want="activate:None:False validate:None:False test:None:False version:None:False package:None:False tag:None:False merge:None:False publish:release-publish:True"
[[ $seen == "$want" ]] || fail "jobs' environments and OIDC access: $seen"
ok "only the Publish job ran in an environment, and only it could ask for an OIDC token"

# 4. The same result as the local run.
tags() { git -C "$1" tag | sort | tr '\n' ' '; }
[[ $(tags "$work/team/origin.git") == $(tags "$work/local/origin.git") ]] \
  || fail "tags: $(tags "$work/team/origin.git") vs $(tags "$work/local/origin.git")"
[[ $(pulls "$FORGE2") == "cdp/release/main->main" ]] || fail "pull requests: $(pulls "$FORGE2")"
[[ $(pulls "$FORGE_API") == "cdp/release/main->main" ]] || fail "local pull requests: $(pulls "$FORGE_API")"
[[ $(publishes "$REG2") == $(publishes "$REGISTRY_PORT") ]] || fail "published: $(publishes "$REG2") vs $(publishes "$REGISTRY_PORT")"
[[ $(releases "$FORGE2") == $(releases "$FORGE_API") && -n $(releases "$FORGE2") ]] \
  || fail "releases: $(releases "$FORGE2") vs $(releases "$FORGE_API")"
for f in "$work/peers/forge/violations.jsonl" "$work/forge2/violations.jsonl"; do
  [[ ! -s $f ]] || fail "Prism found violations: $(cat "$f")"
done
out=$(bash "$here/tests/fixtures/consumer.sh" "$work/consumer" "sparse+http://127.0.0.1:$REG2/index/" \
  'fn main() { println!("{} {:?}", demo_core::greet_loud("e2e"), demo_cli::run()); }' \
  'demo-cli = "=0.2.0"' 'demo-core = "=0.1.1"' 2>&1) || fail "consumer: $out"
[[ $out == 'Hello, e2e "run"' ]] || fail "consumer printed: $out"
ok "tags, pull request, registry contents (real cargo builds a consumer) and GitHub releases equal the local run's"

# 5. A finished job run again does nothing.
before=$(publishes "$REG2")
for job in merge publish; do
  runner run "$job" --name "$job-again" || { cat "$work/jobs/$job-again.log"; fail "job $job again"; }
  grep -q "stage $job passed in run $run_id already: nothing to do" "$work/jobs/$job-again.log" \
    || { cat "$work/jobs/$job-again.log"; fail "job $job ran again"; }
done
[[ $(publishes "$REG2") == "$before" && $(pulls "$FORGE2") == "cdp/release/main->main" ]] || fail "something happened again"
ok "finished jobs run again do nothing: no upload, no second pull request"

# 6. Trusted Publishing: one short-lived token, used for the three uploads, revoked, refused.
tokens=$(curl -sf "http://127.0.0.1:$REG2/_tokens")
[[ $(json 'len(d)' <<<"$tokens") == 1 ]] || fail "exchanged tokens: $tokens"
[[ $(json 'd[0]["revoked"]' <<<"$tokens") == True && $(json 'd[0]["uses"]' <<<"$tokens") == 3 ]] || fail "token: $tokens"
short=$(json 'd[0]["token"]' <<<"$tokens")
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "http://127.0.0.1:$REG2/api/v1/crates/new" -H "Authorization: $short" \
  --data-binary @/dev/null)
[[ $code == 403 ]] || fail "the revoked token was accepted: $code"
grep -rqF "$short" "$work/jobs" && fail "the short-lived token reached a log"
grep -rq "eyJ" "$work/jobs" && fail "an OIDC token reached a log"
git clone -q --mirror "$work/team/origin.git" "$work/mirror"
git -C "$work/mirror" log -p "refs/cdp/runs/$run_id" | grep -qF "$short" && fail "the token is in the run state"
grep -q "Trusted Publishing: the short-lived token is revoked" "$work/jobs/publish-a.log" "$work/jobs/publish-b.log" \
  || fail "the revocation is not logged"
ok "Publish used Trusted Publishing with no long-lived token; the token was revoked and is refused now, and is in no log"
echo "distributed_jobs: $pass passed, 0 failed"
