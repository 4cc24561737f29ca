#!/usr/bin/env bash
# Bad input and a failing world, as the fault campaign of issue 12 met them: for each,
# the exit code the README gives, the one line that names the path, run, crate or
# cycle (no Lua traceback unless CDP_DEBUG=1), and nothing half-done left behind.
set -euo pipefail
NAME=bad-input
source "$(dirname "$0")/../fixtures/e2e.sh"
BASIC=$here/tests/fixtures/engine_basic.lua

# expect CODE CMD...: runs CMD with stdin from /dev/null, keeps stdout in $out and
# stderr in $err, and fails unless it exits CODE.
expect() {
  local want=$1; shift
  set +e; "$@" </dev/null >"$work/out" 2>"$work/err"; local got=$?; set -e
  out=$(cat "$work/out"); err=$(cat "$work/err")
  [[ $got == "$want" ]] || { echo "stdout: $out"; echo "stderr: $err"; fail "'$*' exited $got, expected $want"; }
}
# one_line TEXT [GLOB]: stderr is exactly the cdp: line TEXT, followed by what matches
# GLOB (a run id), plus the usage hint for usage errors, with no Lua traceback.
one_line() {
  local first; first=$(head -n1 <<<"$err")
  [[ $first == "cdp: $1"${2:-} ]] || fail "stderr's first line: '$first', expected 'cdp: $1${2:-}'"
  ! grep -q "stack traceback" <<<"$err" || fail "a traceback: $err"
  local n; n=$(wc -l <<<"$err")
  [[ $n -le 2 ]] || fail "more than one line: $err"
}

# --- outside a git repository: exit 2, one line, nothing written
mkdir "$work/plain"
cd "$work/plain"
expect 2 "$CDP" "$BASIC"
one_line "$work/plain is not in a git repository; cdp keeps its runs in the repository's .cdp/ — run it inside your repository (or git init one)"
[[ -z $(ls -A "$work/plain") ]] || fail "something was written outside a repository: $(ls -A "$work/plain")"
expect 2 "$CDP" resume last
[[ -z $(ls -A "$work/plain") ]] || fail "resume wrote outside a repository"
ok "outside a git repository: exit 2, the one line, no .cdp/"

# --- an unknown run id: exit 2 in every command that takes one
git init -q "$work/repo"
cd "$work/repo"
expect 0 "$CDP" "$BASIC"
for cmd in resume status approve; do
  expect 2 "$CDP" "$cmd" 20990101T000000.000Z-dead
  one_line "no run '20990101T000000.000Z-dead' under $work/repo/.cdp/runs"
  grep -q "^Try 'cdp help $cmd'.$" <<<"$err" || fail "$cmd gives no usage hint: $err"
done
expect 2 "$CDP" approve last
one_line "run $("$CDP" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["run"])') is not awaiting approval (it is done)"
ok "an unknown run id exits 2 for resume, status and approve, naming the id and where runs are"

# --- a read-only .cdp/: exit 1, one line naming the path, nothing half-done
if unshare -rm true 2>/dev/null; then
  runs_before=$(ls .cdp/runs | wc -l)
  expect 1 unshare -rm sh -c 'mount --bind .cdp .cdp && mount -o remount,bind,ro .cdp && exec "$@"' sh "$CDP" "$BASIC"
  one_line "cannot lock the repository's runs: EROFS: read-only file system: $work/repo/.cdp/lock"
  expect 1 unshare -rm sh -c 'mount --bind .cdp/runs .cdp/runs && mount -o remount,bind,ro .cdp/runs && exec "$@"' \
    sh "$CDP" "$BASIC"
  one_line "cannot make the run folder: EROFS: read-only file system: $work/repo/.cdp/runs/" '2[0-9]*Z-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]'

  [[ $(ls .cdp/runs | wc -l) == "$runs_before" ]] || fail "a half-made run was left: $(ls .cdp/runs)"
  expect 1 env CDP_DEBUG=1 unshare -rm sh -c 'mount --bind .cdp .cdp && mount -o remount,bind,ro .cdp && exec "$@"' \
    sh "$CDP" "$BASIC"
  grep -q "stack traceback" <<<"$err" || fail "CDP_DEBUG=1 shows no traceback: $err"
  ok "a read-only .cdp/ or .cdp/runs exits 1 with one line naming the path, leaves no half-made run; CDP_DEBUG=1 adds the traceback"

  # --- the disk fills mid-run: the journal cannot take the next entry
  cat >"$work/full.sh" <<'EOF'
set -eu
cdp=$1 basic=$2 work=$3
mkdir -p "$work/fs" && mount -t tmpfs -o size=512k tmpfs "$work/fs"
git init -q "$work/fs/repo" && cd "$work/fs/repo"
# An output bigger than a page: the entry that records it needs a new block.
big=$(head -c 6000 /dev/zero | tr '\0' x)
set +e
ENGINE_LEAK=$big ENGINE_WAIT="test:$work/go" "$cdp" "$basic" >"$work/full.out" 2>"$work/full.err" &
pid=$!
for _ in $(seq 500); do [ -e "$work/go.started" ] && break; sleep 0.02; done
head -c 2000000 /dev/zero >"$work/fs/filler" 2>/dev/null
touch "$work/go"
wait $pid; echo "exit $?" >"$work/full.code"
"$cdp" status >"$work/full.status" 2>&1
rm "$work/fs/filler"
ENGINE_LEAK=$big "$cdp" resume last >"$work/full.resume" 2>&1; echo "exit $?" >>"$work/full.code"
"$cdp" status --json >"$work/full.json"
EOF
  unshare -rm bash "$work/full.sh" "$CDP" "$BASIC" "$work"
  [[ $(cat "$work/full.code") == $'exit 1\nexit 0' ]] || { cat "$work/full.out" "$work/full.err" "$work/full.resume"; fail "exit codes on a full disk: $(cat "$work/full.code")"; }
  err=$(cat "$work/full.err")
  one_line "cannot record the run in its journal: ENOSPC: no space left on device: $work/fs/repo/.cdp/runs/$(sed -n 's/^run \([^ ]*\) .*/\1/p' "$work/full.status")/journal.ndjson"
  grep -q "test         interrupted" "$work/full.status" || fail "the run after a full disk: $(cat "$work/full.status")"
  python3 - "$work/full.json" <<'EOF' || fail "the resumed run did not finish every stage"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["state"] == "done", s["state"]
assert [t["state"] for t in s["stages"]] == ["passed"] * 4, s["stages"]
EOF
  ok "a disk that fills mid-run: exit 1, one line naming the journal, and the run resumes to done once there is room"
else
  echo "skip - read-only and full-disk cases need unprivileged mount namespaces (unshare -rm)"
fi

# --- the release pipeline's named failures, before anything is written or pushed
PIPELINE=$here/pipelines/release.lua
stage_of() { "$CDP" status --json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(" ".join(t["name"]+":"+t["state"] for t in s["stages"]))'; }
demo() { bash "$here/tests/fixtures/workspace_demo.sh" "$work/$1" >/dev/null; cd "$work/$1/work"; }
tags_of() { git -C "$work/$1/origin.git" tag | sort | tr '\n' ' '; }
release_to() { # STAGE: the release pipeline up to STAGE, tokens set, no forge or registry asked
  env GITHUB_TOKEN=bad-input-token CARGO_REGISTRY_TOKEN=bad-input-token "$CDP" "$PIPELINE" --phase 3 --to "$1" \
    --set validate_skip=access
}

# A published crate that needs a publish = false crate.
demo unpublished
mkdir -p crates/demo-internal/src
printf '[package]\nname = "demo-internal"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n' >crates/demo-internal/Cargo.toml
touch crates/demo-internal/src/lib.rs
sed -i 's|^\[dependencies\]$|[dependencies]\ndemo-internal = { path = "../demo-internal", version = "0.1.0" }|' crates/demo-cli/Cargo.toml
git add -A && git commit -qm "feat(cli): use the internal helpers"
before=$(tags_of unpublished)
expect 1 release_to tag
grep -q "validate| check dependencies: FAILED: demo-cli has a dependency on demo-internal (crates/demo-cli/Cargo.toml), which has publish = false (crates/demo-internal/Cargo.toml): a published crate can need only published crates; publish demo-internal, or drop the dependency" <<<"$out" \
  || { echo "$out"; fail "the unpublished dependency is not named"; }
[[ $(stage_of) == "activate:passed validate:failed test:pending version:pending"* ]] || fail "stages: $(stage_of)"
[[ $(tags_of unpublished) == "$before" ]] || fail "tags were pushed"
ok "a published crate needing a publish = false crate fails Validate naming both and their manifests; nothing runs after it"

# A dev-dependency cycle that carries a version.
demo cycle
sed -i 's|^\[dependencies\]$|[dev-dependencies]\ndemo-cli = { path = "../demo-cli", version = "0.1.0" }\n\n[dependencies]|' crates/demo-util/Cargo.toml
git commit -qam "test(util): check the helpers through the CLI"
expect 1 release_to tag
grep -q "validate| check dependencies: FAILED: a dependency cycle through a dev-dependency with a version: demo-cli -> demo-core -> demo-util -\[dev\]-> demo-cli; cargo cannot publish either crate first — drop the version of demo-util's dev-dependency on demo-cli (keep the path: cargo then leaves it out of the package) in crates/demo-util/Cargo.toml" <<<"$out" \
  || { echo "$out"; fail "the cycle is not named"; }
[[ $(stage_of) == "activate:passed validate:failed"* ]] || fail "stages: $(stage_of)"
ok "a dev-dependency cycle carrying a version fails Validate naming the cycle and the edge to change"

# An empty repository.
git init -q "$work/empty"
cd "$work/empty"
mkdir src && touch src/lib.rs # written, never committed
printf '[package]\nname = "fresh"\nversion = "0.1.0"\nedition = "2021"\n' >Cargo.toml
expect 1 release_to tag
grep -q "cannot release 'HEAD' (from command line): resolve 'HEAD': the repository has no commits yet" <<<"$out" \
  || { echo "$out"; fail "an empty repository is not said to be one"; }
[[ ! -e $(ls -d .cdp/runs/*/fork 2>/dev/null | head -n1) ]] || fail "a fork was made of an empty repository"
expect 1 "$CDP" plan
[[ $err == "cdp plan: cannot resolve 'HEAD': resolve 'HEAD': the repository has no commits yet" ]] || fail "cdp plan says: $err"
ok "an empty repository: 'the repository has no commits yet', from a run and from cdp plan"

# A commit whose message is Latin-1, as git's encoding header says: a whole release
# against the real peers (Prism rejects a body that is not UTF-8) with UTF-8 everywhere.
TOKEN=bad-input-peers-91c
start_peers
demo latin1
printf 'pub fn cafe() -> &'"'"'static str { "au lait" }\n' >>crates/demo-core/src/lib.rs
printf 'fix(core): serve caf\351 au lait\n\nA na\357ve fix.\n' >"$work/msg"
git -c i18n.commitEncoding=ISO-8859-1 commit -qa -F "$work/msg"
[[ $(git cat-file commit HEAD | grep '^encoding ') == "encoding ISO-8859-1" ]] || fail "the fixture commit has no encoding header"
expect 0 env GITHUB_TOKEN=$TOKEN CARGO_REGISTRY_TOKEN=$TOKEN CDP_FORGE_API=$FORGE_API CDP_FORGE_REPO=demo-org/demo \
  CDP_REGISTRY_INDEX=$REGISTRY_INDEX CDP_REGISTRY_LIMITS=none "$CDP" "$PIPELINE" --phase 3
python3 - "$work" "$(pwd)" "$FORGE_API" <<'EOF' || fail "text that is not UTF-8 reached what cdp wrote"
import glob, json, subprocess, sys, tarfile, urllib.request
work, repo, forge = sys.argv[1:]
def utf8(what, data):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        sys.exit("%s is not UTF-8: %s" % (what, e))
changelog = utf8("CHANGELOG.md at the tag", subprocess.run(["git", "-C", work + "/latin1/origin.git", "show",
    "demo-core-v0.1.1:crates/demo-core/CHANGELOG.md"], check=True, capture_output=True).stdout)
assert "serve café au lait" in changelog, changelog
with tarfile.open(work + "/peers/registry/crates/demo-core/0.1.1.crate") as t:
    packed = utf8("the .crate's CHANGELOG.md", t.extractfile("demo-core-0.1.1/CHANGELOG.md").read())
assert "serve café au lait" in packed
for path in glob.glob(repo + "/.cdp/runs/*/journal.ndjson") + glob.glob(repo + "/.cdp/events.jsonl"):
    utf8(path, open(path, "rb").read())
state = json.load(urllib.request.urlopen(forge + "/_state"))
assert any("serve café au lait" in (p.get("body") or "") for p in state["pulls"]), state["pulls"]
assert any("serve café au lait" in (r.get("body") or "") for r in state["releases"]), state["releases"]
EOF
[[ ! -s $work/peers/forge/violations.jsonl ]] || fail "Prism found violations: $(cat "$work/peers/forge/violations.jsonl")"
ok "a Latin-1 commit (encoding header) is released as UTF-8: changelog, .crate, journal, pull request and release bodies"

echo "bad_input: $pass passed"
