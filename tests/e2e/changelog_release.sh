#!/usr/bin/env bash
# Changelogs the way teams write them, through the real CLI and the pipeline cdp ships
# (`cdp run release`, from a repository that holds no file of this checkout):
#   - a #-style file and a `## [x.y.z] - date` file keep their styles;
#   - notes written by hand under [Unreleased] move into the release section, and into
#     the GitHub release body and the pull request (against the forge stand-in);
#   - the section date is the run's start, as its journal records it;
#   - a breaking change is listed once;
#   - changelog = false writes none (release notes still made), a root changelog_path
#     gathers every crate's section, and editing a template module re-runs Package.
set -euo pipefail
NAME=changelog
TOKEN=changelog-e2e-token-31
source "$(dirname "$0")/../fixtures/e2e.sh"
# The packaged commit and notes of the newest run, from its status.
packaged() { "$CDP" status --json | json '[s for s in d["stages"] if s["name"]=="package"][0]["outputs"]["packaged"]'"$1"; }
run_date() { # the date of the newest run's start, from its journal
  local id
  id=$("$CDP" status --json | json 'd["run"]')
  head -n 1 ".cdp/runs/$id/journal.ndjson" | json 'd["time"][:10]'
}

bash "$here/tests/fixtures/workspace_demo.sh" "$work/demo" >/dev/null
cd "$work/demo/work"
cat >crates/demo-core/CHANGELOG.md <<'MD'
# demo-core

Changes, newest first. Install with:

```sh
# 0.0.1 was never published
cargo add demo-core
```

# 0.1.0

## Added

- the first release
MD
cat >crates/demo-util/CHANGELOG.md <<'MD'
# Changelog

## [Unreleased]

Helpers for the next release, described by hand.

### Fixed

- helpers keep leading whitespace (written by hand)

## [1.0.0] - 2025-01-01

- the first release
MD
git add -A
git commit -qm "docs: changelogs written by hand"
git push -q origin main

# 1. Up to Package: the styles, the promotion, the date, breaking once.
"$CDP" run release --to package >"$work/run1.log" 2>&1 || { cat "$work/run1.log"; fail "run 1"; }
date=$(run_date)
commit=$(packaged '["commit"]')
fork=$(packaged '["path"]')
show() { git -C "$fork" show "$commit:$1"; }
docs=$(git log --format=%h -1 --grep='changelogs written by hand')

expected_core=$(cat <<MD
# demo-core

Changes, newest first. Install with:

\`\`\`sh
# 0.0.1 was never published
cargo add demo-core
\`\`\`

# 0.1.1

## Added

- **core:** add a greeting to the core API ($(git log --format=%h -1 --grep='add a greeting'))

## Fixed

- **core:** greet with a capital letter ($(git log --format=%h -1 --grep='capital letter'))

## Documentation

- changelogs written by hand ($docs)

# 0.1.0

## Added

- the first release
MD
)
[[ $(show crates/demo-core/CHANGELOG.md) == "$expected_core" ]] || { show crates/demo-core/CHANGELOG.md; fail "the #-style changelog"; }
ok "a #-style changelog gets a # 0.1.1 section with ## groups, no date, above # 0.1.0; the code block's # line is no release"

util=$(show crates/demo-util/CHANGELOG.md)
expected_util=$(cat <<MD
# Changelog

## [Unreleased]

## [1.0.1] - $date

Helpers for the next release, described by hand.

### Fixed

- helpers keep leading whitespace (written by hand)
- **util:** trim trailing whitespace in helpers ($(git log --format=%h -1 --grep='trim trailing'))

### Documentation

- changelogs written by hand ($docs)

## [1.0.0] - 2025-01-01

- the first release
MD
)
[[ $util == "$expected_util" ]] || { echo "$util"; fail "the [Unreleased] notes were not promoted as expected"; }
ok "the [Unreleased] notes move into ## [1.0.1] - $date (the run's start), merged into ### Fixed; the Unreleased heading stays, empty"

notes=$(packaged '["notes"]["demo-util"]')
[[ $notes == *"helpers keep leading whitespace (written by hand)"* && $notes != *"## [1.0.1]"* ]] || fail "release notes: $notes"
cli=$(show crates/demo-cli/CHANGELOG.md)
[[ $(grep -c "rename the entry point to run" <<<"$cli") == 1 ]] || { echo "$cli"; fail "the breaking change is not listed once"; }
grep -q "^### Breaking changes" <<<"$cli" || fail "no Breaking changes heading"
! grep -q "^### Added" <<<"$cli" || { echo "$cli"; fail "the breaking feat is listed under Added too"; }
ok "Package records each crate's release notes; a breaking change is listed once, under Breaking changes"

for c in demo-cli demo-core demo-util; do
  [[ $("$CDP" changelog "$c" --date "$date") == "==> crates/$c/CHANGELOG.md <==
$(show "crates/$c/CHANGELOG.md")" ]] || fail "cdp changelog $c differs from what Package wrote"
done
[[ $(cat crates/demo-util/CHANGELOG.md) == *"## [Unreleased]

Helpers for the next release"* ]] || fail "cdp changelog or the run wrote into the user's tree"
ok "cdp changelog --date shows exactly what Package wrote, and writes nothing"

# 2. changelog = false: no file written, release notes still made.
CDP_CHANGELOG=false "$CDP" run release --to package >"$work/off.log" 2>&1 || { cat "$work/off.log"; fail "changelog = false"; }
[[ $(stage_state package) == passed ]] || fail "Package did not run again for changelog = false"
commit=$(packaged '["commit"]')
[[ $(git -C "$fork" log -1 --format=%s "$commit") == "chore(release): demo-cli 0.2.0, demo-core 0.1.1, demo-util 1.0.1" ]] \
  || fail "changelog = false still made a changelog commit: $(git -C "$fork" log -1 --format=%s "$commit")"
[[ $(show crates/demo-util/CHANGELOG.md) == "$(cat crates/demo-util/CHANGELOG.md)" ]] || fail "a changelog was written"
[[ $(packaged '["notes"]["demo-core"]') == *"greet with a capital letter"* ]] || fail "no release notes without changelogs"
grep -q "changelog = false: no changelog is written" "$work/off.log" || fail "the log does not say why"
ok "changelog = false writes no changelog and makes no changelog commit; the release notes are still made"

# 3. One changelog at the root for every crate.
CDP_CHANGELOG_PATH=CHANGELOG.md "$CDP" run release --to package >"$work/root.log" 2>&1 || { cat "$work/root.log"; fail "root changelog"; }
commit=$(packaged '["commit"]')
root=$(show CHANGELOG.md)
for h in "## [demo-cli 0.2.0] - $date" "## [demo-core 0.1.1] - $date" "## [demo-util 1.0.1] - $date"; do
  grep -qxF "$h" <<<"$root" || { echo "$root"; fail "the root changelog lacks '$h'"; }
done
[[ $(grep -c '^## \[demo-' <<<"$root") == 3 ]] || fail "sections in the root changelog"
[[ $(show crates/demo-core/CHANGELOG.md) == "$(cat crates/demo-core/CHANGELOG.md)" ]] || fail "a crate's own changelog was written"
[[ $(packaged '["notes"]["demo-core"]') == *"greet with a capital letter"* && $(packaged '["notes"]["demo-core"]') != *"trim trailing"* ]] \
  || fail "demo-core's notes from the shared changelog"
ok "changelog_path = CHANGELOG.md gathers the three crates' sections, each heading naming its crate"

# 4. A team's template, loaded from .cdp/lua/: editing it runs Package again.
mkdir -p .cdp/lua/team
cat >.cdp/lua/team/notes.lua <<'LUA'
return {
  header = "# Release notes\n\n",
  render = function(r)
    local lines = { r.heading, "" }
    for _, s in ipairs(r.sections) do
      for _, e in ipairs(s.entries) do lines[#lines + 1] = "* " .. e.text end
    end
    return table.concat(lines, "\n") .. "\n\n"
  end,
}
LUA
CDP_CHANGELOG_TEMPLATE=team.notes "$CDP" run release --to package >"$work/t1.log" 2>&1 || { cat "$work/t1.log"; fail "template run 1"; }
git -C "$fork" show "$(packaged '["commit"]'):crates/demo-core/CHANGELOG.md" | grep -q '^\* greet with a capital letter' \
  || fail "the team's template was not used"
sed -i 's/"\* "/"+ "/' .cdp/lua/team/notes.lua
CDP_CHANGELOG_TEMPLATE=team.notes "$CDP" run release --to package >"$work/t2.log" 2>&1 || { cat "$work/t2.log"; fail "template run 2"; }
[[ $(stage_state package) == passed ]] || { cat "$work/t2.log"; fail "Package stayed cached after its template was edited"; }
git -C "$fork" show "$(packaged '["commit"]'):crates/demo-core/CHANGELOG.md" | grep -q '^+ greet with a capital letter' \
  || fail "the edited template's output is not in the changelog"
CDP_CHANGELOG_TEMPLATE=team.notes "$CDP" run release --to package >"$work/t3.log" 2>&1 || { cat "$work/t3.log"; fail "template run 3"; }
[[ $(stage_state package) == cached ]] || fail "Package ran again with nothing changed"
ok "a template module's code is part of Package's key: an edit runs Package again, no edit keeps it cached"

# 5. The whole release against the peers: the notes reach the GitHub release and the PR.
start_peers
rm -rf .cdp/lua
env GITHUB_TOKEN=$TOKEN CARGO_REGISTRY_TOKEN=$TOKEN CDP_FORGE_API=$FORGE_API CDP_FORGE_REPO=demo-org/demo \
  CDP_REGISTRY_INDEX="sparse+http://127.0.0.1:$REGISTRY_PORT/index/" CDP_REGISTRY_LIMITS=none \
  "$CDP" run release --phase 3 >"$work/full.log" 2>&1 || { cat "$work/full.log"; fail "the release"; }
state=$(curl -sf "$FORGE_API/_state")
body=$(json '[r["body"] for r in d["releases"] if r["tag_name"]=="demo-util-v1.0.1"][0]' <<<"$state")
[[ $body == "Helpers for the next release, described by hand."* && $body == *"- helpers keep leading whitespace (written by hand)"* ]] \
  || fail "the GitHub release body: $body"
pr=$(json 'd["pulls"][0]["body"]' <<<"$state")
[[ $pr == *"helpers keep leading whitespace (written by hand)"* ]] || fail "the pull request body lacks the notes"
[[ ! -s $work/peers/forge/violations.jsonl ]] || fail "Prism found violations: $(cat "$work/peers/forge/violations.jsonl")"
ok "the notes written under [Unreleased] are in demo-util's GitHub release body and in the pull request"
echo "changelog_release: $pass passed, 0 failed"
