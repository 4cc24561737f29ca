#!/usr/bin/env bash
# pipelines/release.lua the way teams merge: the release PR merged on the forge as a
# squash, a merge commit or a rebase, a fix after it, and the next run releases exactly
# that fix; a release PR left open stops the next run at Validate, before anything is
# pushed. One set of real peers for the whole script (the GitHub stand-in, every request
# checked by Prism, merges on each case's bare remote as GitHub's three buttons do), and
# a registry of its own per case that real cargo consumes.
NAME=release TOKEN=flows-release-token-41d2
source "$(dirname "$0")/../fixtures/flows.sh"
start_peers
release() { run_at "$here/pipelines/release.lua" "$@" --phase 3; }
fix_util() { # pull the merge, then a fix of demo-util, pushed
  git pull -q --no-rebase origin main
  printf 'pub fn pad(s: &str) -> String { format!(" {s}") }\n' >>crates/demo-util/src/lib.rs
  git commit -qam "fix(util): pad on the left"
  git push -q origin main
}

for method in merge squash rebase; do
  fresh "$method"
  new_registry "$method"
  if [[ $method == merge ]]; then
    # Phase 2 with no terminal: the run pauses before Publish, and the gate shows what is
    # approved (plan, tags, PR, each crate's version, checksum and registry) in cdp status
    # and in the approval.needed event. Approved and resumed, it publishes.
    code=0
    run_at "$here/pipelines/release.lua" --phase 2 </dev/null >"$work/gate.log" 2>&1 || code=$?
    [[ $code == 3 ]] || { cat "$work/gate.log"; fail "phase 2 did not pause before Publish (exit $code)"; }
    [[ -z $(publishes) ]] || fail "published before the approval"
    "$CDP" status >"$work/gate-status.log" 2>&1
    cksum=$(sha256sum .cdp/runs/*/crates/demo-util-1.0.1.crate | cut -c1-64)
    for want in "awaiting approval before stage publish" "release demo-cli 0.1.0 -> 0.2.0 (minor)" \
      "tag demo-util-v1.0.1 at " "pull request #1 https://github.invalid/demo-org/demo/pull/1" \
      "publish demo-util 1.0.1 (sha256 $cksum) to $REG_INDEX"; do
      grep -qF "$want" "$work/gate-status.log" || { cat "$work/gate-status.log"; fail "cdp status of the paused run lacks: $want"; }
      grep -qF "${want#awaiting approval before stage publish}" "$work/gate.log" || { cat "$work/gate.log"; fail "the paused run did not print: $want"; }
    done
    grep '"approval.needed"' .cdp/events.jsonl | grep -qF "publish demo-cli 0.2.0 (sha256 " \
      || { cat .cdp/events.jsonl; fail "the approval.needed event does not say what is approved"; }
    gate_run=$("$CDP" status --json | json 'd["run"]')
    "$CDP" approve "$gate_run" --note "e2e: the versions are right" >/dev/null
    cdp_at resume "$gate_run" >"$work/$method-1.log" 2>&1 || { cat "$work/$method-1.log"; fail "$method: resume after the approval"; }
    ok "phase 2 pauses before Publish showing plan, tags, PR, and each crate's version, checksum and registry; approved, it publishes"
  else
    release >"$work/$method-1.log" 2>&1 || { cat "$work/$method-1.log"; fail "$method: the first release"; }
  fi
  [[ $(publishes) == "demo-util@1.0.1 demo-core@0.1.1 demo-cli@0.2.0" ]] || fail "$method: published $(publishes)"
  pr=$(state | json '[p["number"] for p in d["pulls"] if p["state"] == "open"][0]')
  released_at=$(git -C "$work/$method/origin.git" rev-parse "demo-cli-v0.2.0^{commit}")

  if [[ $method == squash ]]; then
    # The release PR is left open and work goes on: the next run stops at Validate,
    # naming the PR, and pushes nothing.
    fix_util
    before=$(origin_refs "$method")
    if release >"$work/open.log" 2>&1; then cat "$work/open.log"; fail "a run with the release PR open passed"; fi
    grep -qF "demo-cli 0.2.0 is tagged on the release branch but not merged: merge PR #$pr first (https://github.invalid/demo-org/demo/pull/$pr; tag demo-cli-v0.2.0 at ${released_at:0:12})" \
      "$work/open.log" || { cat "$work/open.log"; fail "the open PR is not named"; }
    [[ $(stage_state validate) == failed ]] || fail "the open PR did not stop the run at Validate"
    [[ $(origin_refs "$method") == "$before" ]] || fail "the run pushed with the release PR open"
    [[ $(state | json 'len(d["pulls"])') == 1 ]] || fail "a second pull request"
    ok "a release PR left open stops the next run at Validate, naming PR #$pr and its URL; nothing pushed"
  fi

  [[ $(merge_pr "$pr" "$method") == True ]] || fail "$method: the forge did not merge"
  if [[ $method == squash ]]; then git pull -q --no-rebase origin main; else fix_util; fi
  git fetch -q --tags origin # as a clone that fetches does: the tags cdp pushed
  plan=$("$CDP" plan --json | json '" ".join("%s:%s->%s" % (c["name"], c["current"], c["next"]) for c in d["crates"] if c["bump"] != "none")')
  [[ $plan == "demo-util:1.0.1->1.0.2" ]] || fail "$method: cdp plan after the merge: $plan"

  release >"$work/$method-2.log" 2>&1 || { cat "$work/$method-2.log"; fail "$method: the release after the merge"; }
  tags=$(git -C "$work/$method/origin.git" tag | sort | tr '\n' ' ')
  [[ $tags == "demo-cli-v0.1.0 demo-cli-v0.2.0 demo-core-v0.1.0 demo-core-v0.1.1 demo-util-v1.0.0 demo-util-v1.0.1 demo-util-v1.0.2 " ]] \
    || fail "$method: tags $tags"
  [[ $(publishes) == "demo-util@1.0.1 demo-core@0.1.1 demo-cli@0.2.0 demo-util@1.0.2" ]] || fail "$method: published $(publishes)"
  # The tags sit where the merge left them: reachable from main after a merge commit,
  # on commits main never got after a squash or a rebase.
  if git -C "$work/$method/origin.git" merge-base --is-ancestor "$released_at" main; then reach=reachable; else reach=unreachable; fi
  want=unreachable; [[ $method == merge ]] && want=reachable
  [[ $reach == "$want" ]] || fail "$method: the first release's tags are $reach from main"
  # One open release PR: the new one; the merged one stays merged.
  [[ $(state | json '" ".join("%d:%s:%s" % (p["number"], p["state"], p["merged"]) for p in d["pulls"])') == \
    "1:closed:True 2:open:False" ]] || fail "$method: pulls $(state | json 'd["pulls"]')"
  ok "$method-merged release PR, then a fix: only demo-util is released, at 1.0.2; the first tags $want from main; nothing released twice"
done

# Real cargo builds a consumer from the registry with the fix released after the rebase.
out=$(bash "$here/tests/fixtures/consumer.sh" "$work/consumer" "$REG_INDEX" \
  'fn main() { println!("[{}]", demo_util::pad("x")); }' 'demo-util = "=1.0.2"' 2>&1) || fail "consumer: $out"
[[ $out == '[ x]' ]] || fail "consumer printed: $out"
ok "real cargo builds a consumer from the registry with the fix released after the rebase"

[[ ! -s $work/peers/forge/violations.jsonl ]] || fail "Prism found violations: $(cat "$work/peers/forge/violations.jsonl")"
ok "no request cdp sent breaks GitHub's OpenAPI description"
echo "flows_release: $pass passed, 0 failed"
