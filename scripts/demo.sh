#!/usr/bin/env bash
# `make demo`: a whole release of a three-crate workspace, against real peers on loopback.
#   - a bare git remote (file://), a local Cargo registry, and a GitHub stand-in whose every
#     request is validated by Prism against GitHub's own OpenAPI description;
#   - `cdp pipelines/release.lua --phase 3` runs Activate … Publish with no one to ask;
#   - then the plan, the tags, the pull request, the published crates and releases, and a
#     consumer crate that real cargo builds from the registry.
# Usage: demo.sh PATH/TO/cdp   (DEMO_KEEP=1 keeps the folder afterwards)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cdp=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
export PATH=$HOME/.cargo/bin:$PATH
demo=$(mktemp -d /tmp/cdp-demo.XXXXXX)
cleanup() {
  bash "$root/tests/fixtures/peers.sh" stop "$demo/peers" 2>/dev/null || true
  if [[ ${DEMO_KEEP:-} == 1 ]]; then echo "kept $demo"; else rm -rf "$demo"; fi
}
trap cleanup EXIT
title() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

title "A workspace with a conventional history"
bash "$root/tests/fixtures/workspace_demo.sh" "$demo" >/dev/null
cd "$demo/work"
git log --format='  %h %s' --decorate=no | head -8

title "Starting peers on loopback: registry, Prism (GitHub's OpenAPI), GitHub stand-in"
bash "$root/tests/fixtures/peers.sh" start "$demo/peers" demo-token
source "$demo/peers/peers.env"
echo "  registry  $REGISTRY_INDEX"
echo "  forge     $FORGE_API  (Prism on :$PRISM_PORT validates every request)"

export GITHUB_TOKEN=demo-token CARGO_REGISTRY_TOKEN=demo-token
export CDP_FORGE_API=$FORGE_API CDP_FORGE_REPO=demo-org/demo
export CDP_REGISTRY_INDEX=$REGISTRY_INDEX CDP_REGISTRY_LIMITS=none
# The demo workspace has path dependencies only: cargo needs nothing from the network.
export CDP_CARGO_OFFLINE=true

title "cdp plan"
"$cdp" plan

title "cdp plan --explain demo-cli"
"$cdp" plan --explain demo-cli

title "cdp $root/pipelines/release.lua --phase 3"
"$cdp" "$root/pipelines/release.lua" --phase 3

title "Tags on the remote"
git -C "$demo/origin.git" for-each-ref refs/tags --format='  %(refname:short) -> %(*objectname:short) %(subject)'

title "The pull request (GitHub stand-in)"
curl -s "$FORGE_API/_state" | python3 -c '
import json, sys
s = json.load(sys.stdin)
for p in s["pulls"]:
    print("  #%d %s  (%s -> %s)" % (p["number"], p["title"], p["head"]["ref"], p["base"]["ref"]))
for r in s["releases"]:
    print("  release %s: %s" % (r["tag_name"], r["name"]))
'
violations=0
[[ -f $demo/peers/forge/violations.jsonl ]] && violations=$(wc -l <"$demo/peers/forge/violations.jsonl")
echo "  requests Prism found against GitHub's description: $violations"

title "Published to the registry"
curl -s "http://127.0.0.1:$REGISTRY_PORT/_log" | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    print("  %s %s: HTTP %d" % (r["name"], r["vers"], r["status"]))
'

title "A consumer crate built by cargo from the registry"
bash "$root/tests/fixtures/consumer.sh" "$demo/consumer" "$REGISTRY_INDEX" \
  'fn main() { println!("demo-cli says {:?}; demo-core greets: {}", demo_cli::run(), demo_core::greet("cdp")); }' \
  'demo-cli = "0.2"' 'demo-core = "0.1.1"'

title "Run it again: every stage is cached, nothing is tagged, opened or published twice"
"$cdp" "$root/pipelines/release.lua" --phase 3 | tail -10
echo
echo "demo finished: cdp released demo-util 1.0.1, demo-core 0.1.1 and demo-cli 0.2.0"
