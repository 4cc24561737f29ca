"""The agreement tables and the disagreements by cause, as Markdown.

Figures are per released crate: "planned" when cdp's plan at P releases the
crate at all, "same version" when it releases it at the version the
maintainers released. "Extra" counts crates the plan releases that this
release did not (false positives). "Matching preset" is the plan with the
preset of the tool that made the release, or the default policy where the
tool has no preset (a manual release) or this cdp lacks it.
"""
import glob
import json
import os
import re


def load(out):
    rows, metas = [], {}
    for path in sorted(glob.glob(os.path.join(out, "*", "results.jsonl"))):
        name = os.path.basename(os.path.dirname(path))
        try:
            with open(os.path.join(os.path.dirname(path), "meta.json")) as f:
                metas[name] = json.load(f)
        except (OSError, ValueError):
            continue
        with open(path) as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    return rows, metas


def views(rows):
    """{"default", "matching", "template"}: the default policy's rows; the
    preset's rows for an event that has them, else the default's; the rows
    planned with the previous tags' template given, else the default's."""
    default = [r for r in rows if r["policy"] == "default"]

    def instead(pick):
        chosen = {r["event"] for r in rows if pick(r)}
        return [r for r in rows if pick(r) or (r["policy"] == "default" and r["event"] not in chosen)]
    return {"default": default, "matching": instead(lambda r: r.get("preset")),
            "template": instead(lambda r: r["policy"] == "template")}


def pct(a, b):
    return "—" if b == 0 else "%.1f %%" % (100.0 * a / b)


def figures(rows):
    released = [r for r in rows if "skipped" not in r and not r.get("extra")]
    extra = [r for r in rows if r.get("extra")]
    events = {r["event"] for r in rows if "skipped" not in r}
    skipped = {r["event"] for r in rows if "skipped" in r}
    return {"events": len(events), "skipped": len(skipped), "crates": len(released),
            "planned": sum(r["planned"] for r in released), "same": sum(r["same"] for r in released),
            "extra": len(extra)}


def policy_names(rows):
    names = sorted({r["policy"] for r in rows})
    missing = any(r.get("preset_missing") for r in rows)
    text = ", ".join(names)
    return text + (" (preset not in this cdp)" if missing and names == ["default"] else "")


def table(title, key, rows):
    v = views(rows)
    groups = sorted({key(r) for r in rows})
    out = ["| %s | releases | crates released | default: planned | same version | extra | "
           "matching preset | planned | same version | extra | tag template given: planned | same version | extra |"
           % title, "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for g in groups + ["**all**"]:
        f = {name: figures([r for r in rs if g == "**all**" or key(r) == g]) for name, rs in v.items()}
        fd = f["default"]
        releases = "%d" % fd["events"] + (" (+%d skipped)" % fd["skipped"] if fd["skipped"] else "")
        cells = [g, releases, "%d" % fd["crates"]]
        for name in ("default", "matching", "template"):
            if name == "matching":
                cells.append(policy_names([r for r in v["matching"] if g == "**all**" or key(r) == g]))
            x = f[name]
            cells += [pct(x["planned"], x["crates"]), pct(x["same"], x["crates"]), "%d" % x["extra"]]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def by_tool(rows):
    """Disagreements per cause and tool (released crates, default policy)."""
    pick = [r for r in rows if "skipped" not in r and not r.get("extra") and not r["same"]]
    tools = sorted({r["tool"] for r in rows})
    counts = {}
    for r in pick:
        counts.setdefault(r["cause"], {}).setdefault(r["tool"], 0)
        counts[r["cause"]][r["tool"]] += 1
    released = {t: sum(1 for r in rows if r["tool"] == t and "skipped" not in r and not r.get("extra"))
                for t in tools}
    out = ["| cause | " + " | ".join("%s (of %d)" % (t, released[t]) for t in tools) + " |",
           "|---|" + "---:|" * len(tools)]
    for cause, c in sorted(counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
        out.append("| %s | %s |" % (cause, " | ".join(str(c.get(t, "")) for t in tools)))
    return "\n".join(out) + "\n"


def short(r):
    return "%s %s" % (r["event"][:8], r["subject"][:48].replace("|", "/"))


def example(r):
    if r.get("extra"):
        return "%s @ %s: %s planned %s → %s (%s)" % (r["repo"], short(r), r["crate"], r.get("current"),
                                                 r.get("next"), r.get("detail", ""))
    planned = ("%s → %s" % (r.get("current"), r.get("next"))) if r.get("planned") else "not planned (%s)" % r.get("bump")
    return "%s @ %s: %s released %s (previous %s), cdp %s — %s" % (
        r["repo"], short(r), r["crate"], r["expected"], r.get("previous") or "none", planned, r.get("detail", ""))


def spread(rows, n):
    """N examples from as many repositories as possible, in a stable order."""
    by_repo = {}
    for r in sorted(rows, key=lambda r: (r["repo"], r["time"], r["crate"])):
        by_repo.setdefault(r["repo"], []).append(r)
    picked, i = [], 0
    while len(picked) < n and any(i < len(v) for v in by_repo.values()):
        for repo in sorted(by_repo):
            if i < len(by_repo[repo]) and len(picked) < n:
                picked.append(by_repo[repo][i])
        i += 1
    return picked


def causes(rows, examples, extra=False):
    pick = [r for r in rows if "skipped" not in r and (r.get("extra") if extra else not r.get("extra") and not r["same"])]
    groups = {}
    for r in pick:
        groups.setdefault(r["cause"], []).append(r)
    if extra:
        out = ["| cause | crates | repositories | examples |", "|---|---:|---|---|"]
    else:
        out = ["| cause | not planned | other version | repositories | examples |", "|---|---:|---:|---|---|"]
    for cause, rs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        repos = sorted({r["repo"] for r in rs})
        ex = "<br>".join(example(r).replace("|", "/") for r in spread(rs, examples))
        if extra:
            out.append("| %s | %d | %s | %s |" % (cause, len(rs), ", ".join(repos), ex))
        else:
            out.append("| %s | %d | %d | %s | %s |" % (cause, sum(not r["planned"] for r in rs),
                                                    sum(r["planned"] for r in rs), ", ".join(repos), ex))
    return "\n".join(out) + "\n"


def attribution(rows, examples):
    """cdp's commits per released crate against git log's (see measure.attribution)."""
    att = [r for r in rows if r.get("attribution")]
    if not att:
        return ""
    same = [r for r in att if r["attribution"]["only_cdp"] == 0 and r["attribution"]["only_git"] == 0]
    extra = [r for r in att if r["attribution"]["only_cdp"] > 0]
    missing = [r for r in att if r["attribution"]["only_git"] > 0]
    merges = [r for r in extra if r["attribution"]["only_cdp_merges"] > 0]

    def ex(rs):
        return "<br>".join("%s @ %s: %s cdp %d, git log %d (cdp only %d, %d of them merges; git only %d: %s)" % (
            r["repo"], short(r), r["crate"], r["attribution"]["cdp"], r["attribution"]["git"],
            r["attribution"]["only_cdp"], r["attribution"]["only_cdp_merges"], r["attribution"]["only_git"],
            " ".join(r["attribution"]["examples"])) for r in spread(rs, examples))
    out = ["## Attribution against git log\n",
           "Released crates whose last release cdp found (the previous release's tag): cdp's commits "
           "against `git log PREV..P -- DIR` minus nested members.\n",
           "| | crates | repositories | examples |", "|---|---:|---|---|",
           "| same commits | %d | %d | |" % (len(same), len({r["repo"] for r in same})),
           "| cdp has commits git log has not | %d | %s | %s |" % (
               len(extra), ", ".join(sorted({r["repo"] for r in extra})), ex(extra)),
           "| … of which merge commits | %d | %s | |" % (len(merges), ", ".join(sorted({r["repo"] for r in merges}))),
           "| git log has commits cdp has not | %d | %s | %s |" % (
               len(missing), ", ".join(sorted({r["repo"] for r in missing})), ex(missing))]
    return "\n".join(out) + "\n"


def render(out, examples=3):
    rows, metas = load(out)
    if not rows:
        return None
    stamps = sorted({m["cdp"]["commit"] for m in metas.values()})
    parts = ["# Real-world agreement\n",
             "cdp measured: the binary as of %s (%s)\n" % ("; ".join(stamps),
                                         "; ".join(sorted({m["cdp"]["version"] for m in metas.values()}))),
             "Snapshots: " + ", ".join("%s at %s (%d of %d releases)" % (
                 n, m["head"][:10], m["sampled"], m["events"]) for n, m in sorted(metas.items())) + "\n",
             "## By tool\n", table("tool", lambda r: r["tool"], rows),
             "## By repository\n", table("repository", lambda r: r["repo"], rows)]
    skipped = [r for r in views(rows)["default"] if "skipped" in r]
    if skipped:
        parts.append("## Releases not planned (cdp plan failed)\n")
        reasons = {}
        for r in skipped:
            # The same failure with another object id or tag is the same failure.
            why = re.sub(r"\b[0-9a-f]{12,40}\b", "…", r["skipped"])
            reasons.setdefault(why, []).append(r)
        for why, rs in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
            parts.append("- %d × %s (e.g. %s @ %s)\n" % (len(rs), why, rs[0]["repo"], short(rs[0])))
        parts.append("\n")
    parts.append(attribution(views(rows)["default"], examples))
    titles = {"default": "the default policy", "matching": "the matching preset",
              "template": "the default policy with the previous tags' template given"}
    for name, v in views(rows).items():
        if name == "matching" and not any(r.get("preset") for r in rows):
            continue
        parts.append("## Disagreements by cause, %s\n" % titles[name])
        parts.append(by_tool(v))
        parts.append(causes(v, examples))
        parts.append("\n### Planned but not released, %s\n" % titles[name])
        parts.append(causes(v, examples, extra=True))
    return "\n".join(parts)
