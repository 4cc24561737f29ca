#!/usr/bin/env bash
# Activate → Validate → Test → Version → Package on a real workspace with a real history,
# through the real CLI: what the fork holds, that the user's clone is untouched, that a
# second run changes nothing, and that bad input fails clearly and stays resumable.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
CDP=${CDP:-$here/build/cdp}
export PATH=$HOME/.cargo/bin:$PATH
export GITHUB_TOKEN=e2e-forge-token-1 CARGO_REGISTRY_TOKEN=e2e-registry-token-2
export CDP_CARGO_OFFLINE=true # the test workspaces need nothing from the network
work=$(mktemp -d /tmp/cdp-prepare.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL - $*"; exit 1; }
status_json() { "$CDP" status --json; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

fresh() { # a new fixture in $work/$1; prints its work tree
  bash "$here/tests/fixtures/workspace_demo.sh" "$work/$1" >/dev/null
  echo "$work/$1/work"
}

# 1. The happy path.
repo=$(fresh ok)
cd "$repo"
head_before=$(git rev-parse HEAD)
refs_before=$(git for-each-ref --format='%(refname) %(objectname)' | sort)
"$CDP" run "$here/pipelines/release.lua" --to package >"$work/run1.log" 2>&1 || { cat "$work/run1.log"; fail "run 1"; }
[[ $(git rev-parse HEAD) == "$head_before" ]] || fail "the user's HEAD moved"
[[ -z $(git status --porcelain) ]] || fail "the user's tree changed: $(git status --porcelain)"
[[ $(git for-each-ref --format='%(refname) %(objectname)' | sort) == "$refs_before" ]] || fail "the user's refs changed"
ok "the user's clone is untouched"

run=$(status_json | field 'd["run"]')
fork=$repo/.cdp/runs/$run/fork
[[ $(git -C "$fork" log --format=%s -2) == "chore(release): changelogs for demo-cli 0.2.0, demo-core 0.1.1, demo-util 1.0.1
chore(release): demo-cli 0.2.0, demo-core 0.1.1, demo-util 1.0.1" ]] || fail "fork history: $(git -C "$fork" log --oneline -3)"
ok "the fork holds the version commit and the changelog commit"

versions=$(cd "$fork" && cargo metadata --format-version 1 --no-deps --offline | python3 -c '
import json, sys
print(" ".join(sorted(p["name"] + "@" + p["version"] for p in json.load(sys.stdin)["packages"])))')
[[ $versions == "demo-cli@0.2.0 demo-core@0.1.1 demo-util@1.0.1" ]] || fail "cargo metadata on the fork: $versions"
ok "cargo metadata on the fork shows the new versions"

mkdir "$work/unpacked"
for c in demo-cli-0.2.0 demo-core-0.1.1 demo-util-1.0.1; do
  tar -xzf "$repo/.cdp/runs/$run/crates/$c.crate" -C "$work/unpacked"
  grep -q "^version = \"${c##*-}\"" "$work/unpacked/$c/Cargo.toml" || fail "$c.crate has the wrong version"
done
# ^0.1.0 admits 0.1.1, so the requirement on demo-core is left as it was written.
grep -A3 '^\[dependencies.demo-core\]' "$work/unpacked/demo-cli-0.2.0/Cargo.toml" | grep -q 'version = "0.1.0"' \
  || fail "demo-cli.crate's requirement on demo-core"
ok "the .crate files unpack to the new versions"

grep -q "rename the entry point to run" "$fork/crates/demo-cli/CHANGELOG.md" || fail "demo-cli changelog"
date=$(head -n 1 "$repo/.cdp/runs/$run/journal.ndjson" | field 'd["time"][:10]')
for c in demo-cli demo-core demo-util; do
  [[ $("$CDP" changelog "$c" --date "$date") == "==> crates/$c/CHANGELOG.md <==
$(cat "$fork/crates/$c/CHANGELOG.md")" ]] || fail "cdp changelog $c differs from what Package wrote"
done
grep -q "^### Breaking changes" "$fork/crates/demo-cli/CHANGELOG.md" || fail "demo-cli breaking section"
ok "changelogs are written from the history, exactly as cdp changelog shows them beforehand"

# 2. Run again: nothing runs, nothing new in the fork, the same bytes.
sums1=$(status_json | field '" ".join(sorted(c["sha256"] for s in d["stages"] if s["name"]=="package" for c in s["outputs"]["packaged"]["crates"].values()))')
fork_head=$(git -C "$fork" rev-parse HEAD)
changelog1=$(cat "$fork/crates/demo-core/CHANGELOG.md")
"$CDP" run "$here/pipelines/release.lua" --to package >"$work/run2.log" 2>&1 || { cat "$work/run2.log"; fail "run 2"; }
[[ $(grep -c ' cached$' "$work/run2.log") == 5 ]] || { cat "$work/run2.log"; fail "run 2 ran stages again"; }
sums2=$(status_json | field '" ".join(sorted(c["sha256"] for s in d["stages"] if s["name"]=="package" for c in s["outputs"]["packaged"]["crates"].values()))')
[[ $sums1 == "$sums2" ]] || fail "sha256 differ: $sums1 / $sums2"
on_disk=$(sha256sum "$repo/.cdp/runs/$run/crates/"*.crate | awk '{print $1}' | sort | tr '\n' ' ')
[[ $on_disk == "$sums1 " ]] || fail "the .crate files on disk are not what the journal records: $on_disk / $sums1"
run2=$(status_json | field 'd["run"]')
[[ $run2 != "$run" && ! -e $repo/.cdp/runs/$run2/fork && ! -e $repo/.cdp/runs/$run2/crates ]] \
  || fail "the second run made a fork or packages of its own"
[[ $(git -C "$fork" rev-parse HEAD) == "$fork_head" ]] || fail "the fork got a new commit"
[[ $(cat "$fork/crates/demo-core/CHANGELOG.md") == "$changelog1" ]] || fail "the changelog changed"
ok "a second run changes nothing: same commits, same .crate sha256, same changelogs"

# Editing the policy plans again: Version's key holds the policy's fingerprint.
sed 's/policy = conventional {},/policy = conventional { overrides = { ["demo-util"] = "major" } },/' \
  "$here/pipelines/release.lua" >"$work/release-major.lua"
grep -q '"demo-util"\] = "major"' "$work/release-major.lua" || fail "could not edit the policy"
"$CDP" run "$work/release-major.lua" --to package >"$work/run3.log" 2>&1 || { cat "$work/run3.log"; fail "run 3"; }
grep -q "^stage version passed" "$work/run3.log" || { cat "$work/run3.log"; fail "Version stayed cached after the policy changed"; }
grep -q "demo-util 1.0.0 -> 2.0.0 (major)" "$work/run3.log" || fail "the new policy was not applied"
ok "editing the policy in the pipeline script plans again"

# 3. Bad input: each fails clearly, names the culprit, and leaves nothing half-written.
expect_failure() { # name stage pattern: the run fails (exit 1, not a crash), at STAGE, saying PATTERN
  local log=$work/$1.log code=0
  "$CDP" run "$here/pipelines/release.lua" --to package >"$log" 2>&1 || code=$?
  [[ $code == 1 ]] || { cat "$log"; fail "$1: exit code $code, expected 1 (a failed run)"; }
  grep -q -- "$3" "$log" || { cat "$log"; fail "$1: the output does not say '$3'"; }
  [[ $(status_json | field '[s["state"] for s in d["stages"] if s["name"]=="'"$2"'"][0]') == failed ]] || fail "$1: $2 is not the failed stage"
}

repo=$(fresh broken)
cd "$repo"
printf '[package]\nname = "demo-core"\nversion = "0.1.0"\nedition = \n' >crates/demo-core/Cargo.toml
git commit -qam "fix(core): edit the manifest"
expect_failure broken validate "crates/demo-core/Cargo.toml"
grep -q "Cargo.toml:4" "$work/broken.log" || { cat "$work/broken.log"; fail "the broken manifest's line is not named"; }
run=$(status_json | field 'd["run"]')
[[ $(git -C ".cdp/runs/$run/fork" rev-parse HEAD) == $(git rev-parse HEAD) ]] || fail "the fork was written to"
ok "a malformed manifest fails Validate naming the file and line; the fork is untouched"

repo=$(fresh dirty)
cd "$repo"
echo "// not committed" >>crates/demo-util/src/lib.rs
expect_failure dirty validate "uncommitted changes"
grep -q "crates/demo-util/src/lib.rs" "$work/dirty.log" || fail "the dirty file is not named"
run=$(status_json | field 'd["run"]')
git stash -q
"$CDP" resume "$run" >"$work/dirty-resume.log" 2>&1 || { cat "$work/dirty-resume.log"; fail "resume after stashing"; }
ok "a dirty tree fails Validate naming the files; after stashing, cdp resume finishes the run"

repo=$(fresh tests)
cd "$repo"
# (A file breaks it, not a variable: the commands a stage runs get an allow-listed environment.)
cat >>crates/demo-util/src/lib.rs <<RS
#[cfg(test)]
mod tests {
    #[test]
    fn environment_allows_it() {
        assert!(!std::path::Path::new("$work/break-tests").exists(), "break-tests is there");
    }
}
RS
git commit -qam "test(util): a test the environment can break"
touch "$work/break-tests"
expect_failure tests test "environment_allows_it"
rm "$work/break-tests"
grep -q "break-tests is there" "$work/tests.log" || fail "the log tail is not shown"
grep -q '"stage.failed"' .cdp/events.jsonl || fail "no stage.failed alert in .cdp/events.jsonl"
run=$(status_json | field 'd["run"]')
"$CDP" resume "$run" >"$work/tests-resume.log" 2>&1 || { cat "$work/tests-resume.log"; fail "resume after the test passes"; }
[[ $(status_json | field 'd["state"]') == done ]] || fail "the resumed run did not finish"
ok "a failing test shows its log tail, raises an alert, and the run resumes to success"

repo=$(fresh licence)
cd "$repo"
sed -i '/^license = /d' crates/demo-core/Cargo.toml
git commit -qam "chore(core): drop the licence"
expect_failure licence validate "demo-core (.*crates/demo-core/Cargo.toml) has no license"
ok "a crate without a licence fails Validate naming the crate"

# No secret reached a file or the output.
if grep -rqs -e e2e-forge-token-1 -e e2e-registry-token-2 "$work" --include='*.log' --include='*.ndjson' --include='*.jsonl' \
   || grep -rqs -e e2e-forge-token-1 -e e2e-registry-token-2 "$work"/*/work/.cdp; then
  fail "a token leaked"
fi
ok "no token in any log, journal or event file"
echo "release_prepare: $pass passed, 0 failed"
