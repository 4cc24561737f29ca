#!/usr/bin/env bash
# cdp serve: forge push webhooks start runs. Signed, unsigned, wrongly signed, replayed,
# oversized and non-matching deliveries, each answered with its status code; two pushes
# in a row run one after the other, each on its own commit; /health; SIGTERM lets the
# running stage record its interruption and stops.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
CDP=${CDP:-$here/build/cdp}
export PATH=$HOME/.cargo/bin:$PATH
SECRET=serve-secret-31c9
work=$(mktemp -d /tmp/cdp-serve.XXXXXX)
server=
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL - $*"; [[ -f $work/serve.out ]] && cat "$work/serve.out"; exit 1; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

bash "$here/tests/fixtures/workspace_demo.sh" "$work/ws" >/dev/null
cd "$work/ws/work"

start_serve() { # [VAR=value...]
  env "$@" CDP_SERVE_SECRET=$SECRET "$CDP" serve "$here/tests/fixtures/serve_pipeline.lua" --port 0 --branch main \
    --tag 'demo-core-v*' --max-body 65536 >"$work/serve.out" 2>&1 &
  server=$!
  for _ in $(seq 300); do grep -q "listening on" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
  URL=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.out" | head -1)
  [[ -n $URL ]] || fail "cdp serve did not start"
}
sign() { python3 -c 'import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), open(sys.argv[2],"rb").read(), hashlib.sha256).hexdigest())' "$1" "$2"; }
# deliver STYLE ID EVENT BODYFILE [SECRET|none] -> the status code
deliver() {
  local style=$1 id=$2 event=$3 body=$4 secret=${5:-$SECRET} headers=()
  local sig=""
  [[ $secret != none ]] && sig=$(sign "$secret" "$body")
  case $style in
  github) headers=(-H "X-GitHub-Delivery: $id" -H "X-GitHub-Event: $event")
    [[ -n $sig ]] && headers+=(-H "X-Hub-Signature-256: sha256=$sig") ;;
  gitea) headers=(-H "X-Gitea-Delivery: $id" -H "X-Gitea-Event: $event")
    [[ -n $sig ]] && headers+=(-H "X-Gitea-Signature: $sig") ;;
  esac
  curl -s -o "$work/last.json" -w '%{http_code}' -X POST "$URL/" -H 'Content-Type: application/json' \
    "${headers[@]}" --data-binary "@$body"
}
push_body() { # ref commit -> file
  local f=$work/push-$RANDOM.json
  printf '{"ref": "%s", "before": "%s", "after": "%s", "repository": {"full_name": "demo-org/demo"}}' \
    "$1" "0000000000000000000000000000000000000000" "$2" >"$f"
  echo "$f"
}
journal() { cat .cdp/serve/journal.ndjson; }

# The runs' Test stage waits for $work/gate, so the test decides when the first run ends.
start_serve CDP_TEST_COMMANDS="[\"sh -c 'until [ -e $work/gate ]; do sleep 0.1; done'\"]"
[[ $(curl -s -o "$work/health.json" -w '%{http_code}' "$URL/health") == 200 ]] || fail "/health"
[[ $(json 'd["status"]' <"$work/health.json") == ok ]] || fail "/health says $(cat "$work/health.json")"
ok "/health answers"

head=$(git rev-parse HEAD)
body=$(push_body refs/heads/main "$head")
[[ $(deliver github u-1 push "$body" none) == 401 ]] || fail "an unsigned delivery: $(cat "$work/last.json")"
[[ $(deliver github w-1 push "$body" wrong-secret-000) == 401 ]] || fail "a wrongly signed delivery"
[[ $(deliver gitea w-2 push "$body" wrong-secret-000) == 401 ]] || fail "a wrongly signed Gitea delivery"
python3 -c 'import sys; open(sys.argv[1],"w").write("{\"ref\": \"" + "x" * 70000 + "\"}")' "$work/big.json"
[[ $(deliver github big-1 push "$work/big.json") == 413 ]] || fail "an oversized delivery"
printf '{"zen": "Keep it logically awesome."}' >"$work/ping.json"
[[ $(deliver github ping-1 ping "$work/ping.json") == 200 ]] || fail "a ping"
feature=$(push_body refs/heads/feature "$head")
[[ $(deliver github f-1 push "$feature") == 200 ]] || fail "a push to another branch"
grep -q "not a branch this server runs for" "$work/last.json" || fail "the ignored push does not say why: $(cat "$work/last.json")"
printf 'not json' >"$work/bad.json"
[[ $(deliver github bad-1 push "$work/bad.json") == 400 ]] || fail "a body that is not JSON"
[[ $(ls .cdp/runs 2>/dev/null | wc -l) == 0 ]] || fail "a run started for a delivery that is not a push to main"
ok "unsigned and wrongly signed (401), oversized (413), ping (200), another branch (200, ignored) and not JSON (400)"

# Two pushes in a row: queued, then run one after the other, each at its own commit.
git commit -q --allow-empty -m "fix(core): first push"
one=$(git rev-parse HEAD); git push -q origin main
git commit -q --allow-empty -m "fix(core): second push"
two=$(git rev-parse HEAD); git push -q origin main
[[ $(deliver github d-1 push "$(push_body refs/heads/main "$one")") == 202 ]] || fail "the first push: $(cat "$work/last.json")"
for _ in $(seq 600); do grep -q "stage test started" .cdp/serve/d-1.log 2>/dev/null && break; sleep 0.1; done
[[ $(deliver gitea d-2 push "$(push_body refs/heads/main "$two")") == 202 ]] || fail "the second push (Gitea)"
health=$(curl -s "$URL/health")
[[ $(json 'd["running"], d["queued"]' <<<"$health") == "('d-1', 1)" ]] || fail "while the first runs, /health says $health"
touch "$work/gate"
[[ $(deliver github d-1 push "$(push_body refs/heads/main "$one")") == 409 ]] || fail "a replayed delivery"
for _ in $(seq 900); do [[ $(journal | grep -c '"run.ended"') == 2 ]] && break; sleep 0.2; done
[[ $(journal | grep -c '"run.ended"') == 2 ]] || fail "the two runs did not end"
order=$(python3 -c '
import json,sys
es=[json.loads(l) for l in open(".cdp/serve/journal.ndjson")]
print(" ".join("%s:%s" % (e["event"], e.get("delivery") or e.get("id")) for e in es if e["event"] in ("delivery.accepted","run.spawned","run.ended")))')
[[ $order == "delivery.accepted:d-1 run.spawned:d-1 delivery.accepted:d-2 run.ended:d-1 run.spawned:d-2 run.ended:d-2" ]] \
  || fail "the second push was not queued behind the first run: $order"
commits=$(for r in $(ls .cdp/runs); do "$CDP" status "$r" --json | json '[s["outputs"]["trigger"]["commit"] for s in d["stages"] if s["name"]=="activate"][0] + ":" + d["state"]'; done | sort | tr '\n' ' ')
expected=$(printf '%s:done\n%s:done\n' "$one" "$two" | sort | tr '\n' ' ')
[[ $commits == "$expected" ]] || fail "the runs released $commits, not $expected"
ok "two pushes make two queued runs, one after the other, each at its pushed commit; a replayed delivery is refused (409)"

# A tag the server runs for, and one it does not.
tag=$(git rev-parse demo-core-v0.1.0)
[[ $(deliver github t-0 push "$(push_body refs/tags/demo-util-v1.0.0 "$(git rev-parse demo-util-v1.0.0)")") == 200 ]] \
  || fail "a push of a tag not served"
[[ $(deliver github t-1 push "$(push_body refs/tags/demo-core-v0.1.0 "$tag")") == 202 ]] || fail "a push of a served tag"
for _ in $(seq 900); do [[ $(journal | grep -c '"run.ended"') == 3 ]] && break; sleep 0.2; done
[[ $(journal | grep -c '"run.ended"') == 3 ]] || fail "the tag's run did not end"
run=$(journal | python3 -c 'import json,sys; print([json.loads(l) for l in sys.stdin if "run.ended" in l][-1]["run"])')
released=$("$CDP" status "$run" --json | json '[s["outputs"]["trigger"]["commit"] for s in d["stages"] if s["name"]=="activate"][0]')
[[ $released == "$(git rev-parse demo-core-v0.1.0^{commit})" ]] || fail "the tag's run released $released"
ok "a push of a tag matching --tag runs at the tag's commit; another tag is ignored (200)"

# Every delivery is journaled with its id; the secret is in no journal or log.
for id in d-1 d-2 ping-1 f-1; do journal | grep -q "\"id\":\"$id\"" || fail "delivery $id is not journaled"; done
grep -rq "$SECRET" .cdp && fail "the webhook secret reached a journal or log"
ok "accepted and ignored deliveries are journaled with their ids, and the secret is in none"

# SIGTERM while a stage runs: the run records the interruption, cdp serve stops.
kill -TERM "$server"; wait "$server" || true
start_serve CDP_TEST_COMMANDS='["sleep 60"]'
git commit -q --allow-empty -m "fix(core): third push"
three=$(git rev-parse HEAD); git push -q origin main
[[ $(deliver github d-1 push "$(push_body refs/heads/main "$three")") == 409 ]] || fail "a delivery id seen before the restart"
[[ $(deliver github d-3 push "$(push_body refs/heads/main "$three")") == 202 ]] || fail "the third push"
log=.cdp/serve/d-3.log
for _ in $(seq 600); do grep -q "stage test started" "$log" 2>/dev/null && break; sleep 0.1; done
grep -q "stage test started" "$log" || fail "the third run's test stage never started"
[[ $(curl -s "$URL/health" | json 'd["running"]') == d-3 ]] || fail "/health does not show the running delivery"
kill -TERM "$server"
rc=0; wait "$server" || rc=$?
server=
[[ $rc == 0 ]] || fail "cdp serve exited with $rc on SIGTERM"
journal | tail -1 | grep -q '"serve.stopped"' || fail "no serve.stopped entry"
run=$(journal | python3 -c 'import json,sys; print([json.loads(l) for l in sys.stdin if "run.ended" in l][-1]["run"])')
state=$("$CDP" status "$run" --json | json 'd["state"] + " " + [s["state"] for s in d["stages"] if s["name"]=="test"][0]')
[[ $state == "interrupted interrupted" ]] || fail "the interrupted run is $state"
grep -q '"stage.interrupted"' ".cdp/runs/$run/journal.ndjson" || fail "no stage.interrupted record"
ok "SIGTERM lets the running stage record its interruption, then cdp serve stops; ids seen before a restart stay refused"
echo "distributed_serve: $pass passed, 0 failed"
