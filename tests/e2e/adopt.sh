#!/usr/bin/env bash
# A team adopts cdp in its own repository: `make install PREFIX=...` (and DESTDIR), then,
# in a scratch repository outside the checkout and with only the installed binary on the
# PATH, `cdp init`, `cdp plan`, `cdp run release --to package` and `cdp run --to package`.
# cdp init follows the tags' convention and carries release-plz.toml, release.toml
# (cargo-release) and cliff.toml over where cdp has a counterpart; it never writes over
# a file without --force.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
CDP=${CDP:-$here/build/cdp}
build=$(cd "$(dirname "$CDP")" && pwd)
export PATH=$HOME/.cargo/bin:$PATH
work=$(mktemp -d /tmp/cdp-adopt.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL - $*"; exit 1; }

# 1. Install: PREFIX, and DESTDIR for packagers.
make -C "$here" --no-print-directory install BUILD="$build" PREFIX="$work/prefix" >"$work/install.log" 2>&1 \
  || { cat "$work/install.log"; fail "make install"; }
[[ -x $work/prefix/bin/cdp ]] || fail "no $work/prefix/bin/cdp"
for doc in README.md docs/stages.md docs/policies.md docs/changelogs.md; do
  [[ -f $work/prefix/share/doc/cdp/$doc ]] || fail "$doc is not installed"
done
make -C "$here" --no-print-directory install BUILD="$build" PREFIX=/opt/cdp DESTDIR="$work/stage" >"$work/stage.log" 2>&1 \
  || { cat "$work/stage.log"; fail "make install DESTDIR"; }
[[ -x $work/stage/opt/cdp/bin/cdp ]] || fail "DESTDIR was not honoured"
[[ $("$work/prefix/bin/cdp" --version) == "$("$build/cdp" --version)" ]] || fail "the installed cdp is not the built one"
ok "make install puts cdp in PREFIX/bin and the docs in PREFIX/share/doc/cdp (under DESTDIR when given)"

# Only the installed cdp: no checkout on the PATH, no override directories, a HOME of its own.
export PATH=$work/prefix/bin:$HOME/.cargo/bin:/usr/local/bin:/usr/bin:/bin
export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo} RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}
export HOME=$work/home
mkdir -p "$HOME"
unset CDP_LUA_PATH CDP_SOURCE_DIR CDP
[[ $(command -v cdp) == "$work/prefix/bin/cdp" ]] || fail "cdp on the PATH is $(command -v cdp)"

bash "$here/tests/fixtures/workspace_demo.sh" "$work/team" >/dev/null
cd "$work/team/work"
cdp --version | grep -q "lua runtime: embedded" || fail "the installed cdp reads Lua from disk: $(cdp --version)"

# 2. Nothing yet: cdp run says what to do, in one line.
out=$(cdp run 2>&1) && fail "cdp run without a pipeline passed"
[[ $(wc -l <<<"$out") == 1 && $out == *"cdp init"* ]] || fail "cdp run without a pipeline said: $out"
ok "with no pipeline, cdp run says in one line that cdp init writes one"

# 3. cdp init, cdp plan, the shipped pipeline and the project's own, up to Package.
cdp init >"$work/init.log" 2>&1 || { cat "$work/init.log"; fail "cdp init"; }
grep -q "tags:   {crate}-v{version} (found on the last release of 3 of 3 crates)" "$work/init.log" \
  || { cat "$work/init.log"; fail "init did not report the tags"; }
grep -q '^  stages = { "activate", "validate", "test", "version", "package", "tag", "merge", "publish" },$' cdp.lua \
  || fail "cdp.lua lacks the shipped stages"
grep -q '^    -- registry_limits = "crates.io", -- crates.io paces new crates' cdp.lua || fail "no commented settings block"
grep -q '^    --   registry_token from \$CARGO_REGISTRY_TOKEN' cdp.lua || fail "secrets are not listed"
[[ $(cdp config | head -n 1) == "pipeline release, phase 2" ]] || fail "cdp config does not load cdp.lua"
ok "cdp init writes cdp.lua: the shipped stages, the tag convention found, every setting as a commented line"

plan=$(cdp plan)
grep -q "^demo-cli   0.1.0 → 0.2.0  minor" <<<"$plan" && grep -q "^demo-util  1.0.0 → 1.0.1  patch" <<<"$plan" \
  || fail "cdp plan: $plan"
ok "cdp plan shows the Release Plan"

cdp run release --to package >"$work/shipped.log" 2>&1 || { cat "$work/shipped.log"; fail "cdp run release --to package"; }
grep -q "^stage package passed" "$work/shipped.log" || { cat "$work/shipped.log"; fail "Package did not pass"; }
cdp run --to package >"$work/own.log" 2>&1 || { cat "$work/own.log"; fail "cdp run --to package"; }
[[ $(grep -c ' cached$' "$work/own.log") == 5 ]] || { cat "$work/own.log"; fail "cdp.lua's run did not reuse the shipped run's stages"; }
ok "cdp run release --to package and cdp run --to package (cdp.lua) pass; the second reuses the first's stages"

[[ $(git status --porcelain --untracked-files=all) == "?? cdp.lua" ]] || fail "git status: $(git status --porcelain)"
ok "after the runs, git status shows only cdp.lua"

# 4. Never over a file without --force; --stdout writes nothing.
before=$(sha256sum cdp.lua)
out=$(cdp init 2>&1) && fail "cdp init wrote over cdp.lua"
[[ $out == *"cdp.lua exists; \`cdp init --force\` writes cdp.lua over it"* ]] || fail "init said: $out"
cdp init --stdout >"$work/stdout.lua" || fail "cdp init --stdout"
[[ $(sha256sum cdp.lua) == "$before" ]] || fail "cdp.lua changed"
cmp -s "$work/stdout.lua" cdp.lua || fail "--stdout printed another pipeline than the one written"
mkdir "$work/nocargo"
out=$(cd "$work/nocargo" && cdp init 2>&1) && fail "cdp init passed without a Cargo.toml"
[[ $out == *"no Cargo.toml in ."* ]] || fail "init without a workspace said: $out"
ok "cdp init refuses to write over cdp.lua without --force, --stdout writes nothing, no workspace is one clear line"

cdp init --force --github-actions >"$work/gha.log" 2>&1 || { cat "$work/gha.log"; fail "init --github-actions"; }
[[ $(sha256sum cdp.lua) == "$before" ]] || fail "init --force wrote another cdp.lua for the same repository"
grep -q "^wrote .*/.github/workflows/cdp-release.yml: 8 jobs" "$work/gha.log" || { cat "$work/gha.log"; fail "no workflow written"; }
grep -q "cdp stage publish --run .* cdp.lua" .github/workflows/cdp-release.yml || fail "the workflow does not run cdp.lua"
ok "cdp init --github-actions writes the workflow that runs cdp.lua, one job per stage"
rm -rf .github

# 5. A team on release-plz, with its own tag convention.
fresh() { # DIR: the demo workspace with {crate}@{version} tags in DIR/work
  bash "$here/tests/fixtures/workspace_demo.sh" "$work/$1" >/dev/null
  cd "$work/$1/work"
  for t in demo-util-v1.0.0 demo-core-v0.1.0 demo-cli-v0.1.0; do
    git tag -a "${t%-v*}@${t##*-v}" -m "${t%-v*} ${t##*-v}" "$t^{}"
    git tag -d "$t" >/dev/null
  done
}
fresh plz
cat >release-plz.toml <<'TOML'
[workspace]
changelog_update = true
dependencies_update = false
git_release_enable = true
git_tag_name = "{{ package }}@{{ version }}"
pr_labels = ["release"]
semver_check = false
repo_url = "https://github.com/demo-org/demo"
publish_timeout = "10m"

[[package]]
name = "demo-core"
changelog_path = "CHANGELOG.md"

[[package]]
name = "demo-cli"
release = false

[changelog]
protect_breaking_commits = true
sort_commits = "newest"
TOML
cdp init >"$work/plz.log" 2>&1 || { cat "$work/plz.log"; fail "init with release-plz.toml"; }
grep -q "policy: preset release_plz, from release-plz.toml" "$work/plz.log" || { cat "$work/plz.log"; fail "not the release_plz preset"; }
grep -q '^    tag_template = "{crate}@{version}", -- the tags.' cdp.lua || fail "tag_template"
grep -q '^    changelog_path = { \["demo-core"\] = "CHANGELOG.md" }, -- carried over' cdp.lua || fail "changelog_path"
grep -q '^    forge_repo = "demo-org/demo", -- carried over' cdp.lua || fail "forge_repo"
grep -q '^    registry_index_timeout = 600, -- carried over' cdp.lua || fail "publish_timeout"
grep -q 'skip = { "demo-cli" }' cdp.lua || fail "release = false"
grep -q "release-plz.toml: semver_check -> (as cdp does)" "$work/plz.log" || fail "semver_check = false"
grep -q "release-plz.toml: pr_labels: the release PR carries no labels" "$work/plz.log" || fail "pr_labels is not listed as left behind"
grep -q "^--   release-plz.toml: pr_labels: " cdp.lua || fail "cdp.lua's header does not list what was left behind"
plan=$(cdp plan --all) # --all: demo-cli, which does not release, shows too
grep -q "^demo-core  0.1.0 → 0.1.1  patch" <<<"$plan" || fail "the plan does not follow the {crate}@{version} tags: $plan"
grep -q "^demo-cli   0.1.0          none" <<<"$plan" || fail "release = false was not carried over: $plan"
cdp run --to package >"$work/plz-run.log" 2>&1 || { cat "$work/plz-run.log"; fail "cdp run --to package with release-plz's settings"; }
fork=$(ls -d .cdp/runs/*/fork)
grep -q "^## \[0.1.1\]" "$fork/CHANGELOG.md" || fail "demo-core's changelog is not at the root"
[[ ! -e $fork/crates/demo-core/CHANGELOG.md ]] || fail "demo-core's changelog was written in its directory too"
ok "from release-plz.toml: the release_plz preset, its tag names, changelog paths, skipped crates; the rest listed"

# 6. A team on cargo-release.
fresh cr
cat >release.toml <<'TOML'
allow-branch = ["main"]
sign-tag = false
shared-version = true
tag-name = "{{crate_name}}@{{version}}"
push-remote = "upstream"
pre-release-replacements = [
  {file="CHANGELOG.md", search="Unreleased", replace="{{version}}", min=1},
]
TOML
git remote rename origin upstream
cdp init >"$work/cr.log" 2>&1 || { cat "$work/cr.log"; fail "init with release.toml"; }
grep -q "policy: preset cargo_release, from release.toml" "$work/cr.log" || { cat "$work/cr.log"; fail "not the cargo_release preset"; }
grep -q '^    remote = "upstream", -- carried over' cdp.lua || fail "push-remote"
grep -q 'lockstep = { { "demo-cli", "demo-core", "demo-util" } }' cdp.lua || fail "shared-version"
grep -q "release.toml: pre-release-replacements: Package updates version snippets" "$work/cr.log" || fail "replacements not listed"
plan=$(cdp plan)
[[ $(grep -c "→ 1.0.1" <<<"$plan") == 3 ]] || fail "shared-version: $plan"
ok "from release.toml: the cargo_release preset, shared-version as lockstep, push-remote; the rest listed"

# 7. git-cliff's bump rules and remote.
fresh cliff
cat >cliff.toml <<'TOML'
[changelog]
header = "# Changelog\n"
body = "{% for group, commits in commits | group_by(attribute=\"group\") %}### {{ group }}{% endfor %}"
trim = true

[git]
conventional_commits = true
protect_breaking_commits = true
tag_pattern = "[a-z-]+@[0-9].*"

[bump]
features_always_bump_minor = true
breaking_always_bump_major = true

[remote.github]
owner = "demo-org"
repo = "demo"
TOML
cdp init >"$work/cliff.log" 2>&1 || { cat "$work/cliff.log"; fail "init with cliff.toml"; }
grep -q "policy = conventional { zero_major = false }," cdp.lua || fail "the bump rules"
grep -q "cliff.toml: changelog.body: a changelog template module" "$work/cliff.log" || fail "the body template is not listed"
plan=$(cdp plan)
grep -q "^demo-cli   0.1.0 → 1.0.0  major" <<<"$plan" || fail "breaking_always_bump_major: $plan"
ok "from cliff.toml: its bump rules as the policy's zero_major = false, its remote; its templates listed"
echo "adopt: $pass passed, 0 failed"
