"""Plan at the commit before each release with cdp, and compare with what was released.

The work repository borrows the snapshot's objects (objects/info/alternates)
and holds refs of its own, so the snapshot is only ever read. Before each
plan it is checked out at P and given the tags that existed then: the tags
whose commit is older than the release commit R (the release's own tags and
every later one are removed), so cdp sees the history the maintainers saw.
"""
import json
import os
import re
import subprocess

import gitread
import semver

PRESETS = {"release-plz": "release_plz", "smart-release": "smart_release", "cargo-release": "cargo_release"}

CONVENTIONAL = re.compile(r"^(\w+)(\([^)]*\))?(!)?: ")


class Workdir:
    """A non-bare repository at DIR whose objects are the snapshot's."""

    def __init__(self, snapshot_gitdir, dir):
        self.dir = dir
        self.gitdir = os.path.join(dir, ".git")
        self.tags = {}
        self.sparse = set()
        if not os.path.isdir(self.gitdir):
            subprocess.run(["git", "init", "-q", dir], check=True, env=gitread.clean_env())
        objects = os.path.join(snapshot_gitdir, "objects")
        with open(os.path.join(self.gitdir, "objects", "info", "alternates"), "w") as f:
            f.write(objects + "\n")
        # No gc here: with borrowed objects a prune could only lose the refs' targets.
        self.git("config", "gc.auto", "0")
        self.git("config", "core.autocrlf", "false")
        self.git("config", "core.sparseCheckout", "false")
        os.makedirs(os.path.join(self.gitdir, "info"), exist_ok=True)
        for line in self.git("for-each-ref", "refs/tags", "--format=%(refname:strip=2) %(objectname)").splitlines():
            name, oid = line.split(" ")
            self.tags[name] = oid

    def git(self, *args):
        proc = subprocess.run(["git", "-C", self.dir, *args], capture_output=True, env=gitread.clean_env())
        if proc.returncode != 0:
            raise gitread.GitError("git %s in %s: %s" % (" ".join(args[:3]), self.dir,
                                                         proc.stderr.decode(errors="replace").strip()))
        return proc.stdout.decode(errors="replace")

    def set_tags(self, wanted):
        """Make refs/tags exactly WANTED ({name: ref oid}) in one transaction."""
        lines = []
        for name, oid in self.tags.items():
            if wanted.get(name) != oid:
                lines.append("delete refs/tags/%s\n" % name)
        for name, oid in wanted.items():
            if self.tags.get(name) != oid:
                lines.append("create refs/tags/%s %s\n" % (name, oid))
        if lines:
            proc = subprocess.run(["git", "-C", self.dir, "update-ref", "--stdin"],
                                  input="".join(lines).encode(), capture_output=True, env=gitread.clean_env())
            if proc.returncode != 0:
                raise gitread.GitError("update-ref in %s: %s" % (self.dir, proc.stderr.decode().strip()))
        self.tags = dict(wanted)

    def checkout(self, oid):
        """Check out OID. Files whose blobs the snapshot lacks (it leaves out
        files of 4 MiB and more) are left out of the work tree with a sparse
        pattern: cargo metadata does not read them and cdp reads trees only.
        Returns the paths left out."""
        for _ in range(20):
            try:
                self.git("checkout", "-q", "-f", "--detach", oid)
                break
            except gitread.GitError as e:
                missing = set(re.findall(r"unable to read sha1 file of (.+?) \(", str(e)))
                missing |= set(re.findall(r"invalid object \d+ [0-9a-f]+ for '(.+?)'", str(e)))
                if not missing or missing <= self.sparse:
                    raise
                self.sparse |= missing
                with open(os.path.join(self.gitdir, "info", "sparse-checkout"), "w") as f:
                    f.write("/*\n" + "".join("!/%s\n" % p for p in sorted(self.sparse)))
                self.git("config", "core.sparseCheckout", "true")
        self.git("clean", "-q", "-ffdx")
        return sorted(self.sparse)


def prerelease_label(ev):
    """The label to plan EV with: when every crate it released is a pre-release
    with one label (beta in 0.30.0-beta.1), that label, as a maintainer cutting
    a beta asks for it (`cdp plan --prerelease beta`); else None."""
    labels = set()
    for rel in ev.releases.values():
        v = semver.parse(rel.version)
        if v is None or not v.pre:
            return None
        labels.add(v.pre[0] if not v.pre[0].isdigit() else None)
    return labels.pop() if len(labels) == 1 and None not in labels else None


def run_plan(cdp, dir, pipeline, prerelease=None, timeout=600):
    """`cdp plan DIR --json [--pipeline F] [--prerelease L]`: (plan dict, None) or (None, error text)."""
    argv = [cdp, "plan", dir, "--json"] + (["--pipeline", pipeline] if pipeline else []) \
        + (["--prerelease", prerelease] if prerelease else [])
    env = gitread.clean_env()
    # A rust-toolchain.toml in the workspace must not send rustup to the network.
    env["RUSTUP_TOOLCHAIN"] = os.environ.get("RUSTUP_TOOLCHAIN", "stable")
    env["CARGO_NET_OFFLINE"] = "true"
    try:
        proc = subprocess.run(argv, capture_output=True, cwd=dir, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "cdp plan timed out after %d s" % timeout
    if proc.returncode != 0:
        return None, proc.stderr.decode(errors="replace").strip() or "cdp plan exited %d" % proc.returncode
    try:
        return json.loads(proc.stdout), None
    except json.JSONDecodeError as e:
        return None, "cdp plan printed bad JSON: %s" % e


def planned(entry):
    return entry is not None and entry.get("bump") != "none" and entry.get("publish") is True


def convention(tag, crate):
    """The tag template TAG follows for CRATE: "{crate}-v{version}", "v{version}", ..."""
    if tag is None:
        return None
    for sep in ("-v", "-", "@v", "@", "/v", "/", "_v"):
        for name in (crate, crate.replace("-", "_"), crate.replace("_", "-")):
            if tag.startswith(name + sep) and semver.parse(tag[len(name) + len(sep):]):
                return "{crate}%s{version}" % sep
    if tag[:1] in ("v", "V"):
        return "v{version}"
    return "{version}"


def commit_types(entry):
    """Conventional types of the commits the plan attributes to ENTRY ('*' for none)."""
    types = []
    for c in entry.get("commits") or []:
        m = CONVENTIONAL.match(c.get("summary") or "")
        types.append(m.group(1).lower() + ("!" if m.group(3) else "") if m else "*")
    return types


class History:
    """What the classifier needs from the whole history (not only the sample):
    each crate's releases in order, and the workspace at each plan point."""

    def __init__(self, repo, events):
        self.repo = repo
        self.by_crate = {}
        for i, ev in enumerate(events):
            for crate, rel in ev.releases.items():
                self.by_crate.setdefault(crate, []).append((i, ev, rel))
        self.index = {ev.commit.oid: i for i, ev in enumerate(events)}

    def previous(self, ev, crate):
        i = self.index[ev.commit.oid]
        prev = None
        for j, other, rel in self.by_crate.get(crate, []):
            if j < i:
                prev = (other, rel)
        return prev

    def following(self, ev, crate):
        i = self.index[ev.commit.oid]
        for j, other, rel in self.by_crate.get(crate, []):
            if j > i:
                return other, rel
        return None


def classify(hist, ev, crate, expected, entry, plan, ws_p):
    """(cause, detail) for a released crate the plan does not match."""
    prev = hist.previous(ev, crate)
    prev_ev, prev_rel = prev if prev else (None, None)
    ev_v, prev_v = semver.parse(expected), semver.parse(prev_rel.version) if prev_rel else None
    if entry is None:
        if crate not in ws_p.crates:
            return "crate not in the workspace at the plan commit", "added or renamed in the release commit"
        if ws_p.crates[crate].publish is False:
            # cdp leaves never-released publish = false crates out of the plan;
            # the release commit made this one publishable (typos-codegen 1.0.0)
            return "publish = false at the plan commit", "publish = false in the manifest at P, never released"
        return "crate missing from the plan", "in the manifests at P but not in cdp's plan"
    if not entry.get("publishable", entry.get("publish")) and entry.get("bump") == "none":
        return "publish = false at the plan commit", "publish = false in the manifest at P"
    last = entry.get("last_release")
    template = plan.get("tag_template")
    if prev_rel and last is None:
        conv = convention(prev_rel.tag, crate) if prev_rel.tag else None
        if prev_rel.tag is None:
            return "last release not found: never tagged", "previous release %s was a manifest bump only" % prev_rel.version
        if conv != template:
            return "last release not found: tag convention %s" % conv, "previous tag %s (template %s)" % (
                prev_rel.tag, template)
        if not hist.repo.is_ancestor(prev_ev.commit.oid, ev.plan_at):
            return "last release not found: tag off the branch", "previous tag %s is not an ancestor of P" % prev_rel.tag
        if template and "{crate}" not in template:
            return "last release not found: a crate-less template gives the tag to another crate", \
                "previous tag %s, template %s" % (prev_rel.tag, template)
        return "last release not found: other", "previous tag %s" % prev_rel.tag
    if prev_rel and last is not None and last != prev_rel.version and semver.parse(last) != prev_v:
        detail = "cdp took %s (tag %s), the previous release was %s (%s)" % (
            last, entry.get("last_tag"), prev_rel.version, prev_rel.tag)
        last_v = semver.parse(last)
        if last_v and prev_v and prev_v < last_v:
            return "last release misidentified: a higher tag that is no release", detail
        if prev_rel.tag and convention(prev_rel.tag, crate) != convention(entry.get("last_tag"), crate):
            return "last release misidentified: the previous tag follows another convention", detail
        if prev_rel.tag and not hist.repo.is_ancestor(prev_ev.commit.oid, ev.plan_at):
            return "last release misidentified: the newest tag is off the branch", detail
        return "last release misidentified: other", detail
    current = semver.parse(entry.get("current"))
    if current is not None and ev_v is not None and current.pre and not ev_v.pre \
            and current.release == ev_v.release and not (prev_v and prev_v.pre):
        # cargo-release's old dev-version: X.Y.Z-alpha.0 in the manifest between releases.
        return "manifest holds the next version as a pre-release", "manifest at P %s, released %s, cdp %s" % (
            entry.get("current"), expected, entry.get("next") if planned(entry) else "none")
    if prev_rel is None:
        if current is not None and ev_v is not None and current < ev_v:
            # cdp released the manifest's version as new; the maintainers
            # released above it: that version was out already, untagged.
            return "first tag: earlier versions released untagged", "manifest at P %s, released %s, cdp %s" % (
                entry.get("current"), expected, entry.get("next") if planned(entry) else "none")
        if planned(entry):
            return "first release at another version", "planned %s" % entry.get("next")
        return "first release dropped", "bump %s, %d commits" % (entry.get("bump"), len(entry.get("commits") or []))
    if current is not None and current == ev_v and current != prev_v:
        return "manifest already bumped", "manifest at P already says %s" % entry.get("current")
    if ev_v and ev_v.pre and not (prev_v and prev_v.pre and prev_v.release == ev_v.release):
        return "pre-release", "released %s" % expected
    if ev_v and prev_v and prev_v.pre and not ev_v.pre:
        if planned(entry):
            return "pre-release graduation at another version", "planned %s" % entry.get("next")
        return "pre-release graduation dropped", "%s -> %s" % (prev_rel.version, expected)
    if ev_v and ev_v.pre:
        return "pre-release", "released %s" % expected
    nxt = semver.parse(entry.get("next"))
    if planned(entry) and nxt and ev_v and nxt.release == ev_v.release and nxt.pre == ev_v.pre \
            and nxt.build != ev_v.build:
        return "build metadata", "planned %s, released %s" % (entry.get("next"), expected)
    types = commit_types(entry)
    released_here = set(ev.releases)
    deps_released = sorted(d for d in (ws_p.crates[crate].deps if crate in ws_p.crates else {})
                           if d in released_here)
    if not planned(entry):
        inherit = ws_p.crates.get(crate) and ws_p.crates[crate].inherits_version
        if not types:
            if inherit and len({r.version for r in ev.releases.values()}) == 1 and len(ev.releases) > 1:
                return "lockstep: shared version, no commits of its own", "version.workspace, released with %d crates" % len(ev.releases)
            if deps_released:
                return "dependency released: no commits of its own", "depends on %s, released too" % ", ".join(deps_released[:3])
            return "no commits attributed", "released with no commit since %s" % prev_rel.tag
        if all(t == "*" for t in types):
            return "policy: non-conventional commits", "%d commits, none conventional" % len(types)
        kinds = sorted(set(types))
        return "policy: only non-releasing types", "%d commits of types %s" % (len(types), ", ".join(kinds[:6]))
    # Planned at another version.
    if prev_v and ev_v and prev_v.major == 0 and ev_v.major >= 1:
        return "policy: 0.x -> 1.0 chosen by the maintainers", "planned %s, released %s" % (
            entry.get("next"), expected)
    if prev_v and ev_v and prev_v.major == 0 and prev_v.minor == 0 and ev_v.minor > 0:
        return "policy: 0.0.x placeholder released as 0.1 or above", "planned %s, released %s" % (
            entry.get("next"), expected)
    want, got = semver.level(prev_v, ev_v), semver.level(prev_v, nxt)
    rank = {"none": 0, "patch": 1, "minor": 2, "major": 3}
    if want in rank and got in rank:
        if rank[got] < rank[want]:
            breaking = any(t.endswith("!") for t in types)
            feats = any(t.rstrip("!") == "feat" for t in types)
            broke = [d for d in deps_released if _breaking(hist, ev, d)]
            if broke and want == "major":
                return "policy: dependent of a breaking release", "planned %s, released %s (breaking %s)" % (
                    entry.get("next"), expected, ", ".join(broke[:3]))
            if prev_v.major == 0 and feats and want == "major" and not breaking:
                return "policy: feat -> minor on 0.x", "planned %s, released %s" % (entry.get("next"), expected)
            return "policy: released higher than the commits say", "planned %s (%s), released %s (%s); types %s" % (
                entry.get("next"), got, expected, want, ",".join(sorted(set(types))[:5]))
        if rank[got] > rank[want]:
            return "policy: planned higher than released", "planned %s (%s), released %s (%s); types %s" % (
                entry.get("next"), got, expected, want, ",".join(sorted(set(types))[:5]))
    return "other version difference", "planned %s, released %s" % (entry.get("next"), expected)


def _breaking(hist, ev, crate):
    """Whether EV releases CRATE at a version incompatible with its previous release."""
    prev = hist.previous(ev, crate)
    if prev is None:
        return False
    return semver.level(semver.parse(prev[1].version), semver.parse(ev.releases[crate].version)) == "major"


def classify_extra(hist, ev, entry):
    """(cause, detail) for a crate planned but not released in EV."""
    crate = entry["name"]
    later = hist.following(ev, crate)
    prev = hist.previous(ev, crate)
    if entry.get("bump") == "initial" and prev is not None:
        return "planned as a first release: last release not found", "previous %s %s" % (
            prev[1].version, prev[1].tag or "(untagged)")
    if later is None:
        if prev is None:
            return "planned, never released in this history", "bump %s" % entry.get("bump")
        return "planned, not released again after this", "bump %s" % entry.get("bump")
    if later[1].version == entry.get("next"):
        return "planned, released later at the planned version", "released at %s" % later[0].commit.oid[:8]
    return "planned, released later at another version", "planned %s, later %s" % (entry.get("next"), later[1].version)


def attribution(hist, ev, entry, since, ws_p):
    """cdp's commits for ENTRY against `git log SINCE..P -- DIR` with the
    member crates nested in DIR left out, git's own history simplification
    (a merge that takes DIR unchanged from one side brings nothing from the
    other). include/exclude lists are not read, so a crate that ships less
    than its directory shows commits git has and cdp rightly lacks."""
    crate = ws_p.crates.get(entry["name"])
    if crate is None:
        return None
    dir = crate.dir
    specs = [dir or "."]
    for other in ws_p.crates.values():
        if other.dir != dir and (dir == "" or other.dir.startswith(dir + "/")):
            specs.append(":(exclude)" + other.dir)
    out = gitread.run(hist.repo.gitdir, "log", "--format=%H", "%s..%s" % (since, ev.plan_at), "--", *specs)
    git = set(out.split())
    cdp = {c["id"] for c in entry.get("commits") or []} | {c["id"] for c in entry.get("cancelled") or []}
    only_cdp, only_git = sorted(cdp - git), sorted(git - cdp)
    merges = sum(1 for oid in only_cdp if len(hist.repo.commit(oid).parents) > 1)
    return {"cdp": len(cdp), "git": len(git), "only_cdp": len(only_cdp), "only_git": len(only_git),
            "only_cdp_merges": merges, "examples": [o[:10] for o in (only_cdp + only_git)[:3]]}


def compare(hist, ev, plan, ws_p):
    """Per-crate records: every released crate (matched or not) and every
    crate planned but not released."""
    by_name = {c["name"]: c for c in plan.get("crates", [])}
    records = []
    for crate in sorted(ev.releases):
        rel = ev.releases[crate]
        entry = by_name.get(crate)
        is_planned = planned(entry)
        same = is_planned and entry.get("next") == rel.version
        rec = {"crate": crate, "expected": rel.version, "tag": rel.tag, "source": rel.source,
               "planned": is_planned, "same": same,
               "next": entry.get("next") if entry else None, "bump": entry.get("bump") if entry else None,
               "current": entry.get("current") if entry else None,
               "last_release": entry.get("last_release") if entry else None,
               "last_tag": entry.get("last_tag") if entry else None,
               "commits": len(entry.get("commits") or []) if entry else 0}
        prev = hist.previous(ev, crate)
        rec["previous"] = prev[1].version if prev else None
        rec["previous_tag"] = prev[1].tag if prev else None
        if not same:
            rec["cause"], rec["detail"] = classify(hist, ev, crate, rel.version, entry, plan, ws_p)
        if entry is not None and prev and entry.get("last_tag") == prev[1].tag and prev[1].tag:
            rec["attribution"] = attribution(hist, ev, entry, prev[0].commit.oid, ws_p)
        records.append(rec)
    for crate, entry in sorted(by_name.items()):
        if crate in ev.releases or not planned(entry):
            continue
        cause, detail = classify_extra(hist, ev, entry)
        records.append({"crate": crate, "extra": True, "next": entry.get("next"), "bump": entry.get("bump"),
                        "current": entry.get("current"), "last_tag": entry.get("last_tag"),
                        "commits": len(entry.get("commits") or []), "cause": cause, "detail": detail})
    return records


def template_for(hist, ev, ws_p):
    """The tag template the maintainers' previous tags follow, for a third
    plan that is given it: the convention most of EV's crates' previous tags
    follow, when it is not what cdp takes by itself ({crate}-v{version}, or
    v{version} for a one-crate workspace); else None. With it given, the
    causes behind the tag conventions show."""
    counts = {}
    for crate in ev.releases:
        prev = hist.previous(ev, crate)
        conv = convention(prev[1].tag, crate) if prev and prev[1].tag else None
        if conv:
            counts[conv] = counts.get(conv, 0) + 1
    if not counts:
        return None
    best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    default = "v{version}" if len(ws_p.crates) == 1 else "{crate}-v{version}"
    return None if best == default else best


def tags_before(all_tags, commit_time, repo):
    """{name: ref oid} of the tags whose commit is older than COMMIT_TIME."""
    return {name: ref for name, ref, oid in all_tags if repo.commit(oid).time < commit_time}

