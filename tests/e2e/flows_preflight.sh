#!/usr/bin/env bash
# Look before any side effect, through the real CLI against real peers: a wrong registry
# token, a forge token that may only read, and a version the registry holds with other
# bytes each stop pipelines/release.lua before Tag, with the remote and the forge as they
# were; `--to package` needs no token at all.
NAME=preflight TOKEN=flows-preflight-token-0b93
source "$(dirname "$0")/../fixtures/flows.sh"
PIPELINE=$here/pipelines/release.lua
start_peers
release() { run_at "$PIPELINE" "$@" --phase 3; }
# What the forge was asked to change: every request but reads.
forge_writes() { python3 -c "import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l)['method'] != 'GET'))" \
  "$work/peers/forge/requests.jsonl" 2>/dev/null || echo 0; }
untouched() { # case before-refs before-writes: the remote and the forge as they were, nothing published
  [[ $(origin_refs "$1") == "$2" ]] || fail "$1: the remote changed: $(origin_refs "$1")"
  [[ $(forge_writes) == "$3" ]] || fail "$1: the forge was asked to change something"
  [[ -z $(publishes) ]] || fail "$1: published: $(publishes)"
}

# 0. --dry-run tells the release and touches nothing: no fork, no journal, no request.
fresh dryrun
before=$(origin_refs dryrun)
writes=$(forge_writes)
SOURCE_DATE_EPOCH=1700000000 run_at "$PIPELINE" --dry-run >"$work/dryrun.log" 2>&1 || { cat "$work/dryrun.log"; fail "--dry-run"; }
for want in "release fork: $PWD at $(git rev-parse HEAD | cut -c1-12) on branch cdp/release/main, for base main (not made: dry run)" \
  "demo-cli 0.1.0 -> 0.2.0 (minor)" "edit crates/demo-util/Cargo.toml: package.version 1.0.0 -> 1.0.1" \
  "changelog of demo-core 0.1.1 (crates/demo-core/CHANGELOG.md):" "| ## [0.1.1] - 2023-11-14" \
  "| - **core:** greet with a capital letter" "tag demo-cli-v0.2.0" \
  'pull request "chore(release): demo-cli 0.2.0, demo-core 0.1.1, demo-util 1.0.1" from cdp/release/main into main' \
  "publish demo-util 1.0.1 to $REG_INDEX"; do
  grep -qF -- "$want" "$work/dryrun.log" || { cat "$work/dryrun.log"; fail "--dry-run does not print: $want"; }
done
[[ ! -e .cdp/runs ]] || fail "--dry-run made a run: $(ls .cdp/runs)"
[[ -z $(git status --porcelain) ]] || fail "--dry-run changed the working tree: $(git status --porcelain)"
untouched dryrun "$before" "$writes"
ok "--dry-run prints the fork, plan, manifest edits, changelog sections, tags, PR title and what Publish sends where; touches nothing"

# 1. `--to package` with no token set at all: passes, and reaches nothing it does not need.
fresh notokens
env -u GITHUB_TOKEN -u CARGO_REGISTRY_TOKEN -u CDP_GIT_TOKEN "$CDP" "$PIPELINE" --to package >"$work/notokens.log" 2>&1 \
  || { cat "$work/notokens.log"; fail "--to package without tokens"; }
[[ $(stage_state package) == passed && $(stage_state tag) == skipped ]] || fail "--to package: $(cat "$work/notokens.log")"
ok "--to package with no tokens set passes"

# 2. A wrong registry token: Validate asks the registry, and stops the run before Tag.
fresh regtoken
refs=$(origin_refs regtoken); writes=$(forge_writes)
if release CARGO_REGISTRY_TOKEN=wrong-registry-token-31 >"$work/regtoken.log" 2>&1; then cat "$work/regtoken.log"; fail "a wrong registry token passed"; fi
[[ $(stage_state validate) == failed ]] || { cat "$work/regtoken.log"; fail "the wrong registry token was not found at Validate"; }
grep -q "refused the token: 403 authentication failed (check registry_token" "$work/regtoken.log" \
  || { cat "$work/regtoken.log"; fail "the refusal is not explained"; }
! grep -rq "wrong-registry-token-31" "$work/regtoken.log" .cdp || fail "the registry token leaked"
untouched regtoken "$refs" "$writes"
ok "a wrong registry token fails Validate, before Tag: remote and forge untouched, nothing published, the token nowhere"

# 3. A forge token that may read the repository but not push to it.
fresh readonly
refs=$(origin_refs readonly); writes=$(forge_writes)
if release GITHUB_TOKEN=$FORGE_READ_TOKEN >"$work/readonly.log" 2>&1; then cat "$work/readonly.log"; fail "a read-only forge token passed"; fi
[[ $(stage_state validate) == failed ]] || { cat "$work/readonly.log"; fail "the read-only token was not found at Validate"; }
grep -q "the forge token may read demo-org/demo but not push to it" "$work/readonly.log" \
  || { cat "$work/readonly.log"; fail "the missing push right is not explained"; }
untouched readonly "$refs" "$writes"
ok "a forge token without push rights fails Validate: remote and forge untouched"

# 4. The registry holds demo-util 1.0.1 already, with other bytes: found once the .crate
#    files exist, before Tag pushes anything.
fresh clash
other=$work/other
cp -r "$work/clash/work" "$other"
sed -i 's/^version = "1.0.0"/version = "1.0.1"/' "$other/crates/demo-util/Cargo.toml"
printf '// published from elsewhere\n' >>"$other/crates/demo-util/src/lib.rs"
(cd "$other" && cargo package -q --offline --allow-dirty --no-verify -p demo-util)
theirs=$(sha256sum "$other/target/package/demo-util-1.0.1.crate" | cut -d' ' -f1)
(cd "$other" && INDEX=$REGISTRY_INDEX TOKEN=$TOKEN SUM=$theirs "$CDP" -e '
  local registry = require "cdp.registry"
  local json = require "cdp.json"
  local meta = assert(require("cdp.release").cargo_metadata("."))
  local pkg
  for _, p in ipairs(meta.packages) do if p.name == "demo-util" then pkg = p end end
  local f = assert(io.open("target/package/demo-util-1.0.1.crate", "rb"))
  local reg = registry.new { index = os.getenv("INDEX"), token = os.getenv("TOKEN") }
  assert(reg:publish(registry.metadata(pkg), f:read("a")))
  assert(reg:wait_visible("demo-util", "1.0.1", os.getenv("SUM"), 10))' ) \
  || fail "could not publish the other demo-util 1.0.1"
before_publishes=$(publishes)
refs=$(origin_refs clash); writes=$(forge_writes)
if release >"$work/clash.log" 2>&1; then cat "$work/clash.log"; fail "a checksum clash passed"; fi
[[ $(stage_state package) == failed && $(stage_state tag) == pending ]] \
  || { cat "$work/clash.log"; fail "the clash did not stop the run at Package, before Tag"; }
mine=$(sha256sum .cdp/runs/*/crates/demo-util-1.0.1.crate | cut -d' ' -f1)
grep -q "demo-util 1.0.1 is already in the registry .* with checksum $theirs, but the package built here has $mine" "$work/clash.log" \
  || { cat "$work/clash.log"; fail "the clash does not name both checksums"; }
grep -q "nothing was tagged, pushed or published" "$work/clash.log" || fail "the clash does not say nothing happened"
[[ $(origin_refs clash) == "$refs" ]] || fail "clash: the remote changed"
[[ $(forge_writes) == "$writes" ]] || fail "clash: the forge was asked to change something"
[[ $(publishes) == "$before_publishes" ]] || fail "clash: published $(publishes)"
ok "a version in the registry with other bytes fails the run before Tag, naming both checksums: remote and forge untouched"

[[ ! -s $work/peers/forge/violations.jsonl ]] || fail "Prism found violations: $(cat "$work/peers/forge/violations.jsonl")"
ok "no request cdp sent breaks GitHub's OpenAPI description"
echo "flows_preflight: $pass passed, 0 failed"
