#!/usr/bin/env bash
# The PR-first flow through the real CLI: pipelines/release-pr.lua on every push to main
# keeps exactly one release PR, updated; the PR is squash-merged on the forge;
# pipelines/publish.lua on the merged commit tags it and publishes every planned version
# once, with GitHub releases; publish.lua again does nothing and says so. Then a new
# crate at 0.1.0, never tagged, goes the same way into the registry, where real cargo
# finds it. One set of real peers: a bare remote, a local registry, and the GitHub
# stand-in (every request checked by Prism) that merges on the remote.
NAME=pr TOKEN=flows-pr-token-77a0
source "$(dirname "$0")/../fixtures/flows.sh"
start_peers
# release-pr needs the forge token and nothing else; publish needs the registry token.
# (release-pr has no Publish stage, so registry_limits is no setting of it.)
release_pr() {
  env GITHUB_TOKEN="$TOKEN" CDP_FORGE_API="$FORGE_API" CDP_FORGE_REPO=demo-org/demo CDP_REGISTRY_INDEX="$REG_INDEX" \
    "$CDP" "$here/pipelines/release-pr.lua" "$@"
}
publish() { run_at "$here/pipelines/publish.lua" "$@" --phase 3; }
open_pulls() { state | json '" ".join(str(p["number"]) for p in d["pulls"] if p["state"] == "open")'; }
origin=$work/pr/origin.git
tags_at() { git -C "$origin" tag --points-at "$1" | sort | tr '\n' ' '; }

fresh pr

# 1. A push to main: the release PR is opened; nothing is tagged or published.
release_pr >"$work/pr-1.log" 2>&1 || { cat "$work/pr-1.log"; fail "release-pr"; }
[[ $(open_pulls) == 1 ]] || fail "open pulls: $(open_pulls)"
[[ $(state | json 'd["pulls"][0]["title"]') == "chore(release): demo-cli 0.2.0, demo-core 0.1.1, demo-util 1.0.1" ]] \
  || fail "title: $(state | json 'd["pulls"][0]["title"]')"
first_head=$(git -C "$origin" rev-parse cdp/release/main)
[[ $(git -C "$origin" tag | wc -l) == 3 ]] || fail "release-pr tagged"
[[ -z $(publishes) ]] || fail "release-pr published"
ok "release-pr opens the release PR on cdp/release/main, with no registry token, tagging and publishing nothing"

# 2. Another push to main: the same PR, updated; the branch replaced, not added to.
git pull -q --no-rebase origin main
printf 'pub fn louder(s: &str) -> String { s.to_uppercase() }\n' >>crates/demo-core/src/lib.rs
git commit -qam "fix(core): shout when asked"
git push -q origin main
release_pr >"$work/pr-2.log" 2>&1 || { cat "$work/pr-2.log"; fail "release-pr again"; }
[[ $(open_pulls) == 1 ]] || fail "open pulls after the second push: $(open_pulls)"
[[ $(state | json 'len(d["pulls"])') == 1 ]] || fail "a second pull request was opened"
grep -q "shout when asked" <<<"$(state | json 'd["pulls"][0]["body"]')" || fail "the PR body lacks the new commit"
second_head=$(git -C "$origin" rev-parse cdp/release/main)
[[ $second_head != "$first_head" ]] || fail "the release branch did not move"
git -C "$origin" merge-base --is-ancestor main cdp/release/main || fail "the release branch is not on the new main"
grep -q "replaced (cdp pushed it last)" "$work/pr-2.log" || { cat "$work/pr-2.log"; fail "the branch was not replaced under the lease"; }
ok "release-pr after another push updates the one open PR; the release branch is remade on the new main under its lease"

# 3. The maintainer squash-merges it; publish on the merged commit.
[[ $(merge_pr 1 squash) == True ]] || fail "the forge did not merge"
git pull -q --no-rebase origin main
merged=$(git rev-parse HEAD)
publish >"$work/publish-1.log" 2>&1 || { cat "$work/publish-1.log"; fail "publish"; }
[[ $(publishes) == "demo-util@1.0.1 demo-core@0.1.1 demo-cli@0.2.0" ]] || fail "published: $(publishes)"
[[ $(tags_at "$merged") == "demo-cli-v0.2.0 demo-core-v0.1.1 demo-util-v1.0.1 " ]] || fail "tags on the merged commit: $(tags_at "$merged")"
[[ $(state | json '" ".join(sorted(r["tag_name"] for r in d["releases"]))') == "demo-cli-v0.2.0 demo-core-v0.1.1 demo-util-v1.0.1" ]] \
  || fail "GitHub releases: $(state | json 'd["releases"]')"
grep -q "shout when asked" <<<"$(state | json '[r["body"] for r in d["releases"] if r["tag_name"] == "demo-core-v0.1.1"][0]')" \
  || fail "the demo-core release has no notes from its changelog"
[[ $(git log -1 --format=%H) == "$merged" && -z $(git status --porcelain) ]] || fail "publish touched the working tree"
ok "publish on the squash-merged commit: each version published once, tagged on that commit, with GitHub releases and notes"

# 4. publish again: on the same commit every stage is reused and nothing repeated; on a
#    later commit with nothing new it does nothing, and says so.
before_tags=$(git -C "$origin" tag | sort)
publish >"$work/publish-2.log" 2>&1 || { cat "$work/publish-2.log"; fail "publish again"; }
[[ $(grep -c ' cached$' "$work/publish-2.log") == 6 ]] || { cat "$work/publish-2.log"; fail "publish again ran stages"; }
printf '\nReleased with cdp.\n' >>README.md
git commit -qam "docs: say how the demo is released"
git push -q origin main
publish >"$work/publish-3.log" 2>&1 || { cat "$work/publish-3.log"; fail "publish on a commit with nothing new"; }
grep -q "nothing to release: every crate's manifest version is released already" "$work/publish-3.log" \
  || { cat "$work/publish-3.log"; fail "publish does not say there is nothing to do"; }
[[ $(publishes) == "demo-util@1.0.1 demo-core@0.1.1 demo-cli@0.2.0" ]] || fail "published again: $(publishes)"
[[ $(git -C "$origin" tag | sort) == "$before_tags" ]] || fail "tags changed"
[[ $(state | json 'len(d["releases"])') == 3 ]] || fail "releases changed"
ok "publish again repeats nothing; on a commit with nothing new it does nothing and says so"

# 5. A new crate, never tagged, at 0.1.0: through release-pr, the merge and publish.
git pull -q --no-rebase origin main
mkdir -p crates/demo-new/src
cat >crates/demo-new/Cargo.toml <<'TOML'
[package]
name = "demo-new"
version = "0.1.0"
edition = "2021"
description = "A crate new to the cdp demo"
license = "MIT OR Apache-2.0"
repository = "https://github.com/demo-org/demo"
TOML
printf 'pub fn hello() -> &'"'"'static str { "new" }\n' >crates/demo-new/src/lib.rs
cargo generate-lockfile --offline -q
git add -A && git commit -qm "feat(new): a new crate"
git push -q origin main
release_pr >"$work/pr-3.log" 2>&1 || { cat "$work/pr-3.log"; fail "release-pr with a new crate"; }
new_pr=$(open_pulls)
[[ $(state | json "[p['title'] for p in d['pulls'] if p['number'] == $new_pr][0]") == "chore(release): demo-new 0.1.0" ]] \
  || fail "new crate PR: $(state | json 'd["pulls"]')"
[[ $(merge_pr "$new_pr" squash) == True ]] || fail "the forge did not merge the new crate's PR"
git pull -q --no-rebase origin main
publish >"$work/publish-4.log" 2>&1 || { cat "$work/publish-4.log"; fail "publish the new crate"; }
[[ $(publishes) == "demo-util@1.0.1 demo-core@0.1.1 demo-cli@0.2.0 demo-new@0.1.0" ]] || fail "published: $(publishes)"
[[ $(tags_at HEAD) == "demo-new-v0.1.0 " ]] || fail "tags on the merged commit: $(tags_at HEAD)"
grep -q "^## \[0.1.0\]" crates/demo-new/CHANGELOG.md || fail "the new crate has no changelog section"
out=$(bash "$here/tests/fixtures/consumer.sh" "$work/consumer" "$REG_INDEX" \
  'fn main() { println!("{}", demo_new::hello()); }' 'demo-new = "=0.1.0"' 2>&1) || fail "consumer: $out"
[[ $out == new ]] || fail "consumer printed: $out"
ok "a new crate at 0.1.0 with no tag is released: changelog in its PR, tagged, in the registry, built by real cargo"

[[ ! -s $work/peers/forge/violations.jsonl ]] || fail "Prism found violations: $(cat "$work/peers/forge/violations.jsonl")"
ok "no request cdp sent breaks GitHub's OpenAPI description"
echo "flows_pr: $pass passed, 0 failed"
