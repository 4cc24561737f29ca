#!/usr/bin/env bash
# Repository content is untrusted: whatever a commit holds, no link, path or script in
# it makes cdp read a secret or write outside the run. pipelines/release.lua through
# the real CLI, on the demo workspace, against the real peers (bare git remote, the
# local registry, the GitHub stand-in behind Prism).
set -euo pipefail
NAME=untrusted
TOKEN=untrusted-e2e-token-5d17
source "$(dirname "$0")/../fixtures/e2e.sh"
PIPELINE=$here/pipelines/release.lua
start_peers

fresh() { bash "$here/tests/fixtures/workspace_demo.sh" "$work/$1" >/dev/null; cd "$work/$1/work"; }
release() { # [VAR=value...] [cdp options...]: the pipeline in phase 3, every token set
  local vars=()
  while [[ $# -gt 0 && $1 == *=* ]]; do vars+=("$1"); shift; done
  env GITHUB_TOKEN=$TOKEN CARGO_REGISTRY_TOKEN=$TOKEN CDP_FORGE_API=$FORGE_API CDP_FORGE_REPO=demo-org/demo \
    CDP_REGISTRY_INDEX=$REGISTRY_INDEX CDP_REGISTRY_LIMITS=none "${vars[@]}" "$CDP" "$PIPELINE" --phase 3 "$@"
}
publishes() { curl -sf "http://127.0.0.1:$REGISTRY_PORT/_log" | json 'len(d)'; }
# Nothing reached the remote: the three tags of the fixture, main alone, no token in any object.
untouched_remote() { # name
  local origin=$work/$1/origin.git
  [[ $(git -C "$origin" tag | wc -l) == 3 ]] || fail "$1: tags were pushed: $(git -C "$origin" tag | tr '\n' ' ')"
  [[ $(git -C "$origin" for-each-ref --format='%(refname)' refs/heads | tr '\n' ' ') == "refs/heads/main " ]] \
    || fail "$1: branches were pushed: $(git -C "$origin" for-each-ref refs/heads)"
  ! git -C "$origin" log -p --all | grep -q "$TOKEN" || fail "$1: the token is in the remote's history"
  [[ $(publishes) == 0 ]] || fail "$1: something was uploaded to the registry"
  [[ $(curl -sf "$FORGE_API/_state" | json 'len(d["pulls"]) + len(d["releases"])') == 0 ]] || fail "$1: the forge was written to"
}
# The run stopped at Validate, naming PATH; nothing of the fork changed after Activate.
refused_at_validate() { # name log path
  [[ $(stage_state validate) == failed ]] || { cat "$2"; fail "$1: Validate did not refuse it"; }
  [[ $(stage_state version) == pending || $(stage_state version) == "" || $(stage_state version) == skipped ]] \
    || { cat "$2"; fail "$1: Version ran: $(stage_state version)"; }
  grep -q "check links: FAILED" "$2" && grep -qF "$3" "$2" || { cat "$2"; fail "$1: the refusal does not name $3"; }
  local run; run=$("$CDP" status --json | json 'd["run"]')
  [[ -z $(git -C ".cdp/runs/$run/fork" status --porcelain) ]] || fail "$1: the fork was written to"
  ! grep -rqF "$TOKEN" .cdp || fail "$1: the token is in the run's files"
}

# A release of the commit made in $work/NAME/work fails at Validate, naming SHOWN, and
# nothing reached the remote, the registry or the forge.
expect_refused() { # name shown
  if release >"$work/$1.log" 2>&1; then cat "$work/$1.log"; fail "$1: released"; fi
  refused_at_validate "$1" "$work/$1.log" "$2"
  untouched_remote "$1"
}

# 1. The critical one: a committed CHANGELOG.md -> /proc/self/environ.
fresh changelog
ln -s /proc/self/environ crates/demo-core/CHANGELOG.md
git add -A && git commit -qm "docs(core): keep the changelog elsewhere"
expect_refused changelog "crates/demo-core/CHANGELOG.md -> /proc/self/environ"
ok "a committed CHANGELOG.md -> /proc/self/environ is refused at Validate, naming it; nothing pushed, uploaded or leaked"

# 2. A README.md that climbs out of the repository to a credentials file.
fresh readme
printf '[registries.crates-io]\ntoken = "%s"\n' "$TOKEN" >"$work/credentials.toml"
ln -s ../../../../credentials.toml crates/demo-util/README.md
[[ $(cat crates/demo-util/README.md) == *"$TOKEN"* ]] || fail "the README fixture does not reach the credentials"
git add -A && git commit -qm "docs(util): share the README"
expect_refused readme "crates/demo-util/README.md -> ../../../../credentials.toml"
ok "a README.md linked to a credentials file outside is refused at Validate; nothing pushed, uploaded or leaked"

# 3. A crate directory that is a link out of the repository: Version and Package would
#    write where it points.
fresh crate_dir
mkdir -p "$work/elsewhere/src"
printf '[package]\nname = "victim"\nversion = "0.1.0"\nedition = "2021"\ndescription = "x"\nlicense = "MIT"\n' \
  >"$work/elsewhere/Cargo.toml"
printf 'pub fn x() {}\n' >"$work/elsewhere/src/lib.rs"
before=$(cd "$work/elsewhere" && find . -type f | sort | xargs sha256sum)
ln -s "$work/elsewhere" crates/victim
git add -A && git commit -qm "feat: add the victim crate"
expect_refused crate_dir "crates/victim -> $work/elsewhere"
[[ $(cd "$work/elsewhere" && find . -type f | sort | xargs sha256sum) == "$before" ]] || fail "files were written outside the repository"
ok "a crate directory linked out of the repository is refused at Validate; nothing is written where it points"

# 4. A build script that prints its environment, and every ancestor's it can read
#    (/proc/<pid>/environ up to init), during a whole release: Test runs it.
fresh buildrs
cat >crates/demo-core/build.rs <<RS
use std::io::Write;
fn main() {
    let mut out = String::new();
    for (k, v) in std::env::vars() {
        out.push_str(&format!("own {k}={v}\n"));
    }
    let mut pid = std::process::id();
    while pid > 1 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let Some(close) = stat.rfind(')') else { break };
        let comm = &stat[stat.find('(').unwrap_or(0) + 1..close];
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        out.push_str(&format!("ancestor {pid} {comm} {}\n", String::from_utf8_lossy(&environ).replace('\0', " ")));
        pid = stat[close + 2..].split(' ').nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open("$work/buildrs-env.txt").unwrap();
    f.write_all(out.as_bytes()).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
RS
git add -A && git commit -qm "build(core): a build script"
release >"$work/buildrs.log" 2>&1 || { cat "$work/buildrs.log"; fail "the release with a build script failed"; }
[[ -s $work/buildrs-env.txt ]] || fail "the build script did not run"
grep -q "^ancestor [0-9]* cdp " "$work/buildrs-env.txt" || fail "the build script did not reach cdp's /proc entry"
! grep -qF "$TOKEN" "$work/buildrs-env.txt" || fail "a build script read a token: $(grep -F "$TOKEN" "$work/buildrs-env.txt" | cut -c1-200)"
grep -q "^own CDP_RUN=" "$work/buildrs-env.txt" || fail "the build script's environment is not the run's"
! grep -Eq "^own (GITHUB_TOKEN|CARGO_REGISTRY_TOKEN|CDP_[A-Z_]*TOKEN)=" "$work/buildrs-env.txt" || fail "a token variable reached the build script"
! grep -rqF "$TOKEN" "$work/buildrs/origin.git" .cdp || fail "the token is in the remote or the run's files"
ok "a build.rs that prints its environment and its ancestors' (cdp's included) finds none of the tokens"

# 5. Lua the repository ships in .cdp/lua/: every cdp command in a checkout used to run
#    it. It writes the token where the test can see it, if it ever runs.
fresh local_lua
mkdir -p .cdp/lua/cdp/stages
for m in cli plan stages/validate; do
  printf 'local f = io.open([[%s]], "a") f:write(tostring(os.getenv("GITHUB_TOKEN")), "\\n") f:close()\nerror("local Lua ran")\n' \
    "$work/stolen" >".cdp/lua/cdp/$m.lua"
done
printf '*\n!lua/\n!lua/**\n' >.cdp/.gitignore
git add -f .cdp && git commit -qm "chore: tweak the pipeline"
[[ $(git ls-files .cdp | wc -l) == 4 ]] || fail "the .cdp/lua fixture is not committed"
for args in --version help "help run" status plan; do
  env GITHUB_TOKEN=$TOKEN "$CDP" $args >"$work/local-lua.log" 2>&1 || true
  [[ ! -e $work/stolen ]] || { cat "$work/local-lua.log"; fail "cdp $args ran the repository's .cdp/lua"; }
done
release CDP_NO_LOCAL_LUA=1 --to validate >"$work/no-local-lua.log" 2>&1 || { cat "$work/no-local-lua.log"; fail "a run with CDP_NO_LOCAL_LUA=1 failed"; }
[[ ! -e $work/stolen ]] || fail "a run with CDP_NO_LOCAL_LUA=1 ran the repository's .cdp/lua"
! grep -q "using the repository's Lua" "$work/no-local-lua.log" || fail "CDP_NO_LOCAL_LUA=1 still announced .cdp/lua"
if release --to validate >"$work/local-lua-run.log" 2>&1; then fail "the repository's validate override did not run when allowed"; fi
grep -q "cdp: using the repository's Lua from .cdp/lua/ (in place of cdp.plan, cdp.stages.validate; cdp.cli stay built in)" \
  "$work/local-lua-run.log" \
  || { cat "$work/local-lua-run.log"; fail "a run does not say it uses .cdp/lua"; }
[[ -s $work/stolen ]] || fail "the repository's Lua did not run when allowed (the test shows nothing)"
rm -f "$work/stolen"
ok ".cdp/lua is loaded by no --version, help, status or plan; CDP_NO_LOCAL_LUA=1 keeps a run from it; a run that uses it says so"

echo "untrusted_content: $pass passed, 0 failed"
