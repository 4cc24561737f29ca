#!/usr/bin/env bash
# The whole pipelines/release.lua through the real CLI against real peers on loopback:
# bare git remotes, local Cargo registries that real cargo builds from, and the GitHub
# stand-in whose every request Prism validates against GitHub's OpenAPI description.
set -euo pipefail
NAME=full
TOKEN=full-e2e-token-8c41
source "$(dirname "$0")/../fixtures/e2e.sh"
PIPELINE=$here/pipelines/release.lua
export CDP_CARGO_OFFLINE=true # the test workspaces need nothing from the network
start_peers

new_registry() { # name -> sets REG_PORT
  python3 "$here/tests/fixtures/registry.py" --root "$work/$1-registry" --token "$TOKEN" >"$work/$1.port" 2>"$work/$1-registry.log" &
  background $!
  REG_PORT=$(wait_port "$work/$1.port")
}
publishes() { curl -sf "http://127.0.0.1:$1/_log" | json '" ".join("%s@%s:%d" % (r["name"], r["vers"], r["status"]) for r in d)'; }
control() { curl -sf -X POST "http://127.0.0.1:$1/_control" -d "$2" >/dev/null; }
fresh() { bash "$here/tests/fixtures/workspace_demo.sh" "$work/$1" >/dev/null; cd "$work/$1/work"; }
release() { # registry-port [VAR=value...] [cdp options...] -- runs the pipeline in phase 3
  local port=$1; shift
  local vars=()
  while [[ $# -gt 0 && $1 == *=* ]]; do vars+=("$1"); shift; done
  env GITHUB_TOKEN=$TOKEN CARGO_REGISTRY_TOKEN=$TOKEN CDP_FORGE_API=$FORGE_API CDP_FORGE_REPO=demo-org/demo \
    CDP_REGISTRY_INDEX="sparse+http://127.0.0.1:$port/index/" CDP_REGISTRY_LIMITS=none "${vars[@]}" \
    "$CDP" "$PIPELINE" --phase 3 "$@"
}
resume() {
  env GITHUB_TOKEN=$TOKEN CARGO_REGISTRY_TOKEN=$TOKEN CDP_FORGE_API=$FORGE_API CDP_FORGE_REPO=demo-org/demo \
    CDP_REGISTRY_INDEX="sparse+http://127.0.0.1:$1/index/" CDP_REGISTRY_LIMITS=none "$CDP" resume "$2"
}
run_id() { "$CDP" status --json | json 'd["run"]'; }
pulls_for() { curl -sf "$FORGE_API/_state" | json 'len([p for p in d["pulls"] if p["head"]["ref"]=="'"$1"'"])'; }
releases() { curl -sf "$FORGE_API/_state" | json 'len(d["releases"])'; }

# 1. A whole release.
fresh happy
new_registry happy
happy_port=$REG_PORT
release "$happy_port" >"$work/happy.log" 2>&1 || { cat "$work/happy.log"; fail "the release failed"; }
tags=$(git -C "$work/happy/origin.git" tag | sort | tr '\n' ' ')
[[ $tags == "demo-cli-v0.1.0 demo-cli-v0.2.0 demo-core-v0.1.0 demo-core-v0.1.1 demo-util-v1.0.0 demo-util-v1.0.1 " ]] || fail "tags: $tags"
[[ $(pulls_for "cdp/release/main") == 1 ]] || fail "no pull request for cdp/release/main"
[[ $(publishes "$happy_port") == "demo-util@1.0.1:200 demo-core@0.1.1:200 demo-cli@0.2.0:200" ]] || fail "published: $(publishes "$happy_port")"
[[ $(releases) == 3 ]] || fail "GitHub releases: $(releases)"
[[ ! -s $work/peers/forge/violations.jsonl ]] || fail "Prism found violations: $(cat "$work/peers/forge/violations.jsonl")"
ok "the whole release: tags pushed, pull request opened, three crates published in order, three releases, no request Prism rejects"

out=$(bash "$here/tests/fixtures/consumer.sh" "$work/consumer" "sparse+http://127.0.0.1:$happy_port/index/" \
  'fn main() { println!("{} {:?}", demo_core::greet_loud("e2e"), demo_cli::run()); }' \
  'demo-cli = "=0.2.0"' 'demo-core = "=0.1.1"' 2>&1) || fail "consumer: $out"
[[ $out == 'Hello, e2e "run"' ]] || fail "consumer printed: $out"
ok "real cargo builds a consumer crate from the registry with the new versions"

release "$happy_port" >"$work/again.log" 2>&1 || { cat "$work/again.log"; fail "the second run failed"; }
[[ $(grep -c ' cached$' "$work/again.log") == 8 ]] || { cat "$work/again.log"; fail "the second run ran stages"; }
[[ $(git -C "$work/happy/origin.git" tag | wc -l) == 6 ]] || fail "new tags"
[[ $(curl -sf "$FORGE_API/_state" | json 'len(d["pulls"])') == 1 ]] || fail "a second pull request"
[[ $(publishes "$happy_port") == "demo-util@1.0.1:200 demo-core@0.1.1:200 demo-cli@0.2.0:200" ]] || fail "published again"
[[ $(releases) == 3 ]] || fail "a release was made again"
ok "run again after success: no new tag, pull request, publish or release"

# 2. The registry fails on the second of three crates; the run resumes and every version is
#    published exactly once. A 429 with Retry-After on the way is waited out.
fresh fault
new_registry fault
control "$REG_PORT" '{"fail": {"crate": "demo-core", "times": 1, "status": 500}}'
if release "$REG_PORT" >"$work/fault.log" 2>&1; then cat "$work/fault.log"; fail "publish did not fail"; fi
[[ $(stage_state publish) == failed ]] || fail "publish is not the failed stage"
grep -q "demo-core 0.1.1.*500 injected failure" "$work/fault.log" || { cat "$work/fault.log"; fail "the registry error is not shown"; }
grep -q '"stage.failed"' .cdp/events.jsonl || fail "no stage.failed alert"
run=$(run_id)
control "$REG_PORT" '{"rate_limit": {"times": 1, "retry_after": 2}}'
resume "$REG_PORT" "$run" >"$work/fault-resume.log" 2>&1 || { cat "$work/fault-resume.log"; fail "resume failed"; }
grep -q "Retry-After" "$work/fault-resume.log" || { cat "$work/fault-resume.log"; fail "the 429 was not waited out"; }
[[ $(publishes "$REG_PORT") == "demo-util@1.0.1:200 demo-core@0.1.1:500 demo-core@0.1.1:429 demo-core@0.1.1:200 demo-cli@0.2.0:200" ]] \
  || fail "publish log: $(publishes "$REG_PORT")"
ok "a registry failure on the 2nd of 3 fails Publish with an alert; cdp resume waits out a 429 and publishes the rest, each version once"

# 3. The registry holds the same version with other bytes: a clear error, nothing published.
fresh clash
before=$(publishes "$happy_port")
if release "$happy_port" >"$work/clash.log" 2>&1; then fail "a checksum clash was published"; fi
grep -q "already in the registry" "$work/clash.log" || { cat "$work/clash.log"; fail "the clash is not explained"; }
[[ $(publishes "$happy_port") == "$before" ]] || fail "something was published on a clash"
ok "the same version with another checksum fails before any upload"

# 3b. A crate that may go only to another registry is refused, and nothing is uploaded.
fresh restricted
new_registry restricted
sed -i 's/^license = .*/&\npublish = ["internal"]/' crates/demo-util/Cargo.toml
git commit -qam "fix(util): keep this crate in the internal registry"
if release "$REG_PORT" >"$work/restricted.log" 2>&1; then fail "a crate limited to another registry was published"; fi
grep -q 'demo-util may be published only to internal' "$work/restricted.log" || { cat "$work/restricted.log"; fail "the refusal is not explained"; }
[[ -z $(publishes "$REG_PORT") ]] || fail "published despite publish = [\"internal\"]"
[[ $(stage_state package) == failed ]] || fail "the refusal should come before packaging"
ok "a crate whose publish list names other registries is refused before packaging or any upload"

# 4. The release tag is already on the remote, at a commit outside this history (a tag
#    inside it would simply be the last release, and the plan would move past it).
fresh conflict
new_registry conflict
git -C "$work/conflict/work" checkout -q -b side HEAD~2
git -C "$work/conflict/work" commit -q --allow-empty -m "chore: a release made by hand elsewhere"
git -C "$work/conflict/work" tag -a demo-core-v0.1.1 -m "made by hand"
hand=$(git -C "$work/conflict/work" rev-parse HEAD)
git -C "$work/conflict/work" push -q origin demo-core-v0.1.1
git -C "$work/conflict/work" checkout -q main
# Validate finds it first: a release tag on a commit the branch never merged.
if release "$REG_PORT" >"$work/conflict-validate.log" 2>&1; then fail "a tag conflict passed"; fi
[[ $(stage_state validate) == failed ]] || { cat "$work/conflict-validate.log"; fail "validate did not find the stray tag"; }
grep -q "demo-core 0.1.1 is tagged .*demo-core-v0.1.1.* ${hand:0:12}" "$work/conflict-validate.log" \
  || { cat "$work/conflict-validate.log"; fail "validate does not name the tag and its commit"; }
# Past that check, Tag itself refuses before pushing anything.
if release "$REG_PORT" CDP_VALIDATE_SKIP=unmerged >"$work/conflict.log" 2>&1; then fail "a tag conflict passed"; fi
[[ $(stage_state tag) == failed ]] || fail "tag is not the failed stage"
grep -q "demo-core-v0.1.1" "$work/conflict.log" && grep -q "${hand:0:12}" "$work/conflict.log" \
  || { cat "$work/conflict.log"; fail "the conflict does not name the tag and its commit"; }
[[ $(git -C "$work/conflict/origin.git" tag | wc -l) == 4 ]] || fail "tags were pushed despite the conflict"
[[ -z $(publishes "$REG_PORT") ]] || fail "published despite the conflict"
ok "a stray release tag stops Validate naming tag and commit, and Tag naming both commits; nothing pushed or published"

# 5. A wrong forge token and an unknown repository.
fresh token
new_registry token
if release "$REG_PORT" GITHUB_TOKEN=wrong-forge-token-55 >"$work/token.log" 2>&1; then fail "a wrong token passed"; fi
grep -q "401 Bad credentials" "$work/token.log" || { cat "$work/token.log"; fail "the 401 is not reported"; }
[[ $(stage_state validate) == failed ]] || fail "a wrong token should stop the run at Validate, before Tag"
[[ $(git -C "$work/token/origin.git" tag | wc -l) == 3 ]] || fail "tags were pushed before the wrong token was found"
! grep -q "wrong-forge-token-55" "$work/token.log" .cdp -r || fail "the token leaked"
[[ -z $(publishes "$REG_PORT") ]] || fail "published with a wrong forge token"
fresh unknown
if release "$REG_PORT" CDP_FORGE_REPO=demo-org/nope >"$work/unknown.log" 2>&1; then fail "an unknown repository passed"; fi
grep -q "404 Not Found" "$work/unknown.log" && grep -q "demo-org/nope" "$work/unknown.log" || { cat "$work/unknown.log"; fail "the 404 is not reported"; }
[[ $(git -C "$work/unknown/origin.git" tag | wc -l) == 3 ]] || fail "tags were pushed before the unknown repository was found"
ok "a wrong token (401) and an unknown repository (404) fail Validate clearly, without the token, before anything is pushed"

# 6. A reviewer pushed a fixup to the release branch; running Merge again must not force
#    over it: the stage stops, naming the branch, the commit and its author.
fresh nonff
new_registry nonff
release "$REG_PORT" >"$work/nonff-1.log" 2>&1 || { cat "$work/nonff-1.log"; fail "the first release"; }
git clone -q "$work/nonff/origin.git" "$work/reviewer"
git -C "$work/reviewer" checkout -q "cdp/release/main"
GIT_AUTHOR_NAME=Reviewer GIT_AUTHOR_EMAIL=r@example.invalid git -C "$work/reviewer" \
  commit -q --allow-empty -m "docs: a reviewer's fixup"
git -C "$work/reviewer" push -q origin "cdp/release/main"
if release "$REG_PORT" --force merge >"$work/nonff.log" 2>&1; then cat "$work/nonff.log"; fail "a push over the reviewer passed"; fi
grep -q "cdp/release/main on .* has commits cdp did not push" "$work/nonff.log" \
  && grep -q "docs: a reviewer's fixup (Reviewer <r@example.invalid>)" "$work/nonff.log" \
  || { cat "$work/nonff.log"; fail "the refused push is not explained"; }
[[ $(git -C "$work/nonff/origin.git" log -1 --format=%s "cdp/release/main") == "docs: a reviewer's fixup" ]] \
  || fail "the reviewer's commit was overwritten"
ok "a release branch with a reviewer's commit on it is never pushed over; the stage names the commit and its author"

# 7. Prism's check bites: a request that breaks GitHub's description is refused and recorded.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$FORGE_API/repos/demo-org/demo/pulls" \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"title": 7}')
[[ $code == 422 ]] || fail "a bad request got $code"
grep -q "title must be string" "$work/peers/forge/violations.jsonl" || fail "the violation was not recorded"
[[ $(wc -l <"$work/peers/forge/violations.jsonl") == 1 ]] || fail "cdp's own requests broke the description"
ok "a deliberately bad request is rejected by Prism, and it is the only one"
echo "release_full: $pass passed, 0 failed"
