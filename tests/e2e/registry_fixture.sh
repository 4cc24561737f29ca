#!/usr/bin/env bash
# The local registry fixture speaks cargo's own protocol: real cargo publishes to it
# and real cargo builds a consumer from it. Every registry test downstream relies on this.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/cdp-registry.XXXXXX)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

python3 "$here/fixtures/registry.py" --root "$work/registry" --token secret-token >"$work/port" 2>"$work/registry.log" &
pid=$!
for _ in $(seq 100); do grep -q PORT "$work/port" 2>/dev/null && break; sleep 0.1; done
port=$(awk '/PORT/ {print $2}' "$work/port")
[[ -n $port ]] || { echo "registry did not start"; cat "$work/registry.log"; exit 1; }

export CARGO_HOME=$work/cargo-home
mkdir -p "$CARGO_HOME"
cat >"$CARGO_HOME/config.toml" <<TOML
[registries.local]
index = "sparse+http://127.0.0.1:$port/index/"
[net]
git-fetch-with-cli = true
TOML

mkcrate() { # name version deps-toml
  mkdir -p "$work/$1/src"
  cat >"$work/$1/Cargo.toml" <<TOML
[package]
name = "$1"
version = "$2"
edition = "2021"
description = "fixture crate $1"
license = "MIT"
publish = ["local"]

[dependencies]
$3
TOML
  printf 'pub fn %s() -> &'"'"'static str { "%s %s" }\n' "${1//-/_}" "$1" "$2" >"$work/$1/src/lib.rs"
}

mkcrate base-lib 0.2.0 ""
(cd "$work/base-lib" && cargo publish --registry local --token secret-token --no-verify --allow-dirty -q)

# A wrong token is refused, and nothing is published.
mkcrate app-lib 1.0.0 'base = { package = "base-lib", version = "0.2", registry = "local" }'
sed -i 's/pub fn app_lib.*/pub fn app_lib() -> String { base::base_lib().to_string() }/' "$work/app-lib/src/lib.rs"
if (cd "$work/app-lib" && cargo publish --registry local --token wrong --no-verify --allow-dirty -q 2>"$work/err"); then
  echo "publish with a wrong token succeeded"; exit 1
fi
grep -q "invalid or missing API token" "$work/err"
(cd "$work/app-lib" && cargo publish --registry local --token secret-token --no-verify --allow-dirty -q)

# The index holds what cargo sent, the renamed dependency included.
curl -sf "http://127.0.0.1:$port/index/ap/p-/app-lib" | python3 -c '
import json, sys
e = json.loads(sys.stdin.readline())
assert e["vers"] == "1.0.0", e
d = e["deps"][0]
assert d["name"] == "base" and d["package"] == "base-lib" and d["req"] == "^0.2", d
'

# A consumer builds from the registry with real cargo.
mkdir -p "$work/consumer/src"
cat >"$work/consumer/Cargo.toml" <<TOML
[package]
name = "consumer"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
app-lib = { version = "1", registry = "local" }
TOML
echo 'fn main() { println!("{}", app_lib::app_lib()); }' >"$work/consumer/src/main.rs"
out=$(cd "$work/consumer" && cargo run -q)
[[ $out == "base-lib 0.2.0" ]] || { echo "consumer printed: $out"; exit 1; }

# Every publish attempt is logged: two good, one refused before it reached the log.
[[ $(curl -sf "http://127.0.0.1:$port/_log" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))') == 2 ]]
echo "registry fixture: 1 passed, 0 failed"
