#!/usr/bin/env python3
"""Real-world agreement: cdp's Release Plan against what maintainers released.

    realworld.py measure [--out DIR] [--sample N] [--cdp PATH] [--fresh] SNAPSHOT[=TOOL]...
    realworld.py report  [--out DIR] [--examples N]
    realworld.py events  SNAPSHOT[=TOOL]

`measure` derives the release events of each snapshot (a git directory, bare
or not), plans with `cdp plan --json` at the commit before each sampled
release, once with the default policy and once with the preset of the tool
that made the release when this cdp has it, and writes OUT/NAME/results.jsonl.
`report` prints the agreement tables and the disagreements by cause from
every OUT/*/results.jsonl. `events` prints the events of one snapshot.
Python 3.11 standard library only; see README.md for the method.
"""
import argparse
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import events  # noqa: E402
import gitread  # noqa: E402
import measure  # noqa: E402
import report  # noqa: E402
import workspace  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_OUT = os.path.join(ROOT, "bench", "work", "realworld")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def snapshot_arg(arg):
    """SNAPSHOT[=TOOL] -> (path, tool or None)."""
    path, sep, tool = arg.rpartition("=")
    if sep and tool in events.TOOLS and path:
        return path, tool
    return arg, None


def gitdir_of(path):
    proc = subprocess.run(["git", "-C", path, "rev-parse", "--absolute-git-dir"], capture_output=True,
                          env=gitread.clean_env())
    if proc.returncode != 0:
        return None, proc.stderr.decode(errors="replace").strip() or "not a git repository"
    gitdir = proc.stdout.decode().strip()
    if os.path.exists(os.path.join(gitdir, "shallow")):
        return None, "a shallow repository: its history stops before its releases"
    return gitdir, None


def name_of(path):
    path = os.path.abspath(path).rstrip("/")
    base = os.path.basename(path)
    if base in ("repo", ".git") or base.endswith(".git") and base != ".git":
        parent = os.path.basename(os.path.dirname(path))
        return parent if base in ("repo", ".git") else base[:-4]
    return base


def cdp_stamp(cdp):
    """What identifies the cdp measured: its commit (when built from this
    checkout), its version line and the binary's sha256."""
    with open(cdp, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    version = subprocess.run([cdp, "--version"], capture_output=True).stdout.decode().split("\n")[0]
    # The newest commit that changed what goes into the binary, not this harness.
    commit = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h %s", "--", "src", "lua", "stdlib",
                             "pipelines", "CMakeLists.txt"], capture_output=True).stdout.decode().strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "--", "src", "lua",
                            "stdlib"], capture_output=True).stdout.decode().strip()
    lua_path = os.environ.get("CDP_LUA_PATH")
    if lua_path:
        # Modules under CDP_LUA_PATH take precedence over the embedded ones:
        # they are part of what is measured.
        h = hashlib.sha256(digest.encode())
        for d in lua_path.split(":"):
            for base, _dirs, files in sorted(os.walk(d)):
                for name in sorted(files):
                    if name.endswith(".lua"):
                        path = os.path.join(base, name)
                        with open(path, "rb") as f:
                            h.update(path.encode() + b"\0" + f.read())
        digest = h.hexdigest()
    return {"sha256": digest, "version": version, "lua_path": lua_path,
            "commit": commit + (" (+ uncommitted changes)" if dirty else "")
            + (" with CDP_LUA_PATH=%s" % lua_path if lua_path else "")}


def presets_available(cdp):
    """{tool: module} of the presets this cdp has."""
    found = {}
    for tool, module in measure.PRESETS.items():
        code = 'local ok = pcall(require, "cdp.policies.%s"); os.exit(ok and 0 or 1)' % module
        if subprocess.run([cdp, "-e", code], capture_output=True, env=gitread.clean_env()).returncode == 0:
            found[tool] = module
    return found


def write_pipeline(dir, module, template=None):
    """A pipeline script holding only a policy (and a tag template when given)."""
    name = module + ("-" + hashlib.sha256(template.encode()).hexdigest()[:8] if template else "")
    path = os.path.join(dir, "%s.lua" % name)
    with open(path, "w") as f:
        f.write("-- Written by bench/realworld: %s with its defaults, %s.\n"
                "return { policy = require(\"cdp.policies.%s\") {}%s }\n" % (
                    module, "tag template %s" % template if template else "no tag template", module,
                    ", settings = { tag_template = %s }" % json.dumps(template) if template else ""))
    return path


def event_line(ev):
    rel = ", ".join("%s %s" % (c, ev.releases[c].version) for c in sorted(ev.releases))
    return "%s %s %-13s %s  [%s]" % (ev.commit.oid[:10], datetime.date.fromtimestamp(ev.time).isoformat(),
                                    ev.tool, ev.commit.subject[:60], rel[:200])


def cmd_events(args):
    path, tool = snapshot_arg(args.snapshot)
    gitdir, err = gitdir_of(path)
    if not gitdir:
        log("%s: %s" % (path, err))
        return 1
    with gitread.Repo(gitdir) as repo:
        evs, notes = events.derive(repo, tool, log)
    for ev in evs:
        print(event_line(ev) + ("  (%s)" % ev.note if ev.note else ""))
    print("%d events; %d tags, %d read as releases, %d unread, %d duplicates; "
          "%d crates never tagged (%d manifest-bump releases)" % (
              len(evs), notes["tags"], notes["release_tags"], len(notes["unread"]), notes["duplicates"],
              len(notes["untagged_crates"]), notes["bump_events"]))
    for why in notes["unread"][:20]:
        print("  unread: " + why)
    return 0


def measure_snapshot(args, path, tool, cdp, stamp, presets):
    gitdir, err = gitdir_of(path)
    if not gitdir:
        log("skip %s: %s" % (path, err))
        return None
    name = name_of(path)
    out = os.path.join(args.out, name)
    plans = os.path.join(out, "plans")
    meta_path = os.path.join(out, "meta.json")
    try:
        with open(meta_path) as f:
            old = json.load(f)
    except (OSError, ValueError):
        old = {}
    # Plans are kept for the same binary (and Lua modules under CDP_LUA_PATH) only.
    if args.fresh or old.get("cdp", {}).get("sha256") != stamp["sha256"] or old.get("gitdir") != gitdir:
        shutil.rmtree(plans, ignore_errors=True)
    os.makedirs(plans, exist_ok=True)
    t0 = time.time()
    with gitread.Repo(gitdir) as repo:
        log("%s: reading releases from %s" % (name, gitdir))
        evs, notes = events.derive(repo, tool, lambda m: log("%s: %s" % (name, m)))
        chosen = events.sample([e for e in evs if e.plan_at], args.sample)
        log("%s: %d release events, %d sampled" % (name, len(evs), len(chosen)))
        with open(os.path.join(out, "events.json"), "w") as f:
            json.dump({"events": [e.as_dict() for e in evs], "notes": notes,
                       "sampled": [e.commit.oid for e in chosen]}, f, indent=1, sort_keys=True)
        hist = measure.History(repo, evs)
        all_tags = repo.tags()
        work = measure.Workdir(gitdir, os.path.join(out, "work"))
        pipelines = {tool_: write_pipeline(out, module) for tool_, module in presets.items()}
        results = []
        for n, ev in enumerate(chosen, 1):
            ws_p = workspace.at(repo, ev.plan_at)
            policies = [("default", None)]
            if ev.tool in measure.PRESETS:
                module = measure.PRESETS[ev.tool]
                if ev.tool in pipelines:
                    policies.append((module, pipelines[ev.tool]))
            template = measure.template_for(hist, ev, ws_p)
            if template:
                policies.append(("template", write_pipeline(out, "conventional", template)))
            label = measure.prerelease_label(ev)
            checked_out = False
            for policy, pipeline in policies:
                key = "%s-%s-%s%s" % (ev.commit.oid[:12], ev.plan_at[:12],
                                      os.path.basename(pipeline)[:-4] if pipeline else policy,
                                      "-" + label if label else "")
                plan_file = os.path.join(plans, key + ".json")
                plan, perr = None, None
                if os.path.exists(plan_file):
                    with open(plan_file) as f:
                        saved = json.load(f)
                    plan, perr = saved.get("plan"), saved.get("error")
                elif ws_p.error:
                    perr = "no workspace at the plan commit: %s" % ws_p.error
                else:
                    try:
                        if not checked_out:
                            work.set_tags(measure.tags_before(all_tags, ev.time, repo))
                            work.checkout(ev.plan_at)
                            checked_out = True
                        plan, perr = measure.run_plan(cdp, os.path.join(work.dir, ws_p.root), pipeline,
                                                      label)
                        if plan is not None and policy == "template" and plan.get("tag_template") != template:
                            # A plan that did not take the template says nothing about it.
                            plan, perr = None, "cdp plan --pipeline did not take tag_template %s (planned with %s)" % (
                                template, plan.get("tag_template"))
                    except gitread.GitError as e:
                        plan, perr = None, "cannot check out the plan commit: %s" % e
                    with open(plan_file, "w") as f:
                        json.dump({"plan": plan, "error": perr}, f, sort_keys=True)
                base = {"repo": name, "event": ev.commit.oid, "plan_at": ev.plan_at, "subject": ev.commit.subject,
                        "time": ev.time, "tool": ev.tool, "policy": policy, "prerelease": label,
                        "preset": policy not in ("default", "template"),
                        "template": template if policy == "template" else None,
                        "preset_missing": policy == "default" and ev.tool in measure.PRESETS
                        and ev.tool not in pipelines}
                if plan is None:
                    results.append(dict(base, skipped=perr.split("\n")[0][:300], error=perr[:2000],
                                        crates=len(ev.releases)))
                    status = "skipped: " + perr.split("\n")[-1][:100]
                else:
                    recs = measure.compare(hist, ev, plan, ws_p)
                    for r in recs:
                        results.append(dict(base, **r))
                    rel = [r for r in recs if not r.get("extra")]
                    status = "%d/%d planned, %d same, %d extra" % (
                        sum(r["planned"] for r in rel), len(rel), sum(r["same"] for r in rel),
                        len(recs) - len(rel))
                log("%s [%d/%d] %s %s %s %s: %s" % (name, n, len(chosen), ev.commit.oid[:10], ev.tool, policy,
                                                 ev.commit.subject[:40], status))
    with open(os.path.join(out, "results.jsonl"), "w") as f:
        for r in results:
            f.write(json.dumps(r, sort_keys=True) + "\n")
    meta = {"snapshot": os.path.abspath(path), "gitdir": gitdir, "name": name, "cdp": stamp,
            "head": gitread.run(gitdir, "rev-parse", "HEAD").strip(), "events": len(evs),
            "sampled": len(chosen), "sample_limit": args.sample, "presets": presets,
            "seconds": round(time.time() - t0, 1), "tool_override": tool}
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    log("%s: done in %.0f s" % (name, time.time() - t0))
    return meta


def cmd_measure(args):
    cdp = os.path.abspath(args.cdp)
    if not os.access(cdp, os.X_OK):
        log("no cdp binary at %s: run make build (or pass --cdp)" % cdp)
        return 2
    stamp = cdp_stamp(cdp)
    presets = presets_available(cdp)
    log("cdp: %s, %s; presets: %s" % (stamp["commit"], stamp["version"], ", ".join(presets.values()) or "none"))
    done = 0
    for arg in args.snapshots:
        path, tool = snapshot_arg(arg)
        if not os.path.isdir(path):
            log("skip %s: no such directory" % path)
            continue
        if measure_snapshot(args, path, tool, cdp, stamp, presets):
            done += 1
    if done == 0:
        log("nothing measured")
        return 1
    return 0


def cmd_report(args):
    text = report.render(args.out, args.examples)
    if text is None:
        log("no results under %s: run `realworld.py measure SNAPSHOT...` first" % args.out)
        return 1
    sys.stdout.write(text)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(text)
    return 0


def main(argv):
    p = argparse.ArgumentParser(prog="realworld.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="plan before each sampled release of each snapshot")
    m.add_argument("snapshots", nargs="+", metavar="SNAPSHOT[=TOOL]",
                   help="a git directory; =TOOL (%s) overrides the tool read from each release" % ", ".join(events.TOOLS))
    m.add_argument("--out", default=DEFAULT_OUT, help="results directory (default %(default)s)")
    m.add_argument("--sample", type=int, default=int(os.environ.get("SAMPLE", 30)),
                   help="releases planned per repository, spread evenly over its history (0: all; default %(default)s)")
    m.add_argument("--cdp", default=os.environ.get("CDP", os.path.join(ROOT, "build", "cdp")))
    m.add_argument("--fresh", action="store_true", help="plan again even where a plan of this cdp is kept")
    r = sub.add_parser("report", help="agreement tables and disagreements by cause")
    r.add_argument("--out", default=DEFAULT_OUT)
    r.add_argument("--examples", type=int, default=3, help="examples per cause (default %(default)s)")
    e = sub.add_parser("events", help="list the release events of one snapshot")
    e.add_argument("snapshot", metavar="SNAPSHOT[=TOOL]")
    args = p.parse_args(argv)
    return {"measure": cmd_measure, "report": cmd_report, "events": cmd_events}[args.command](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
