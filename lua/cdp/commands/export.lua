-- cdp export github-actions|gitlab-ci [PIPELINE]: the CI file that runs PIPELINE as one
-- job per stage (cdp stage NAME --run ID), each job on a runner of its own.
--
-- What a job gets is read from the pipeline, never listed here: its stage's secrets
-- (the settings of type secret it reads, less those it reads only to check later
-- stages early), its gates (run.gates for the pipeline's phase: a stage that waits
-- for approval before it, or after the stage before it, runs in a protected
-- environment), and the permissions of what it does.
local cli = require "cdp.cli"
local yaml = require "cdp.yaml"

local export = {
  summary = "write the CI workflow that runs a pipeline as one job per stage",
  usage = "cdp export github-actions|gitlab-ci [PIPELINE] [--output FILE | --stdout] [--branch B] "
    .. "[--runs-on LABEL | --runs-on STAGE=LABEL]... [--install COMMAND] [--phase N] [--on push|merged-release]",
  help = [[
github-actions writes .github/workflows/cdp-<pipeline>.yml; gitlab-ci writes
.gitlab-ci.yml. One job per stage, each needing the one before. Each job checks out
the repository with its full history, installs cdp, and runs
  cdp stage NAME --run <CI run id> PIPELINE
which fetches the run's state from refs/cdp/runs/<id> on the origin, runs the stage
and pushes the state back (cdp help stage).

  - Secrets: each is given only to the jobs whose stage reads it (the registry token
    to Publish alone). Every job pushes the run state, so each gets the push token
    (GitHub: the job's own github.token, with contents: write).
  - Gates: the pipeline's phase decides which stages wait for a person. Such a job
    runs in an environment named <pipeline>-<stage>: on GitHub, create it under
    Settings → Environments with required reviewers; on GitLab, make it a protected
    environment (the job is also when: manual).
  - Trusted Publishing: the Publish job may ask for an OIDC token (id-token: write),
    and no other job may.
  - Triggers: a push to the base branch (--branch, default main) and a manual run;
    one run at a time per branch, never cancelled midway.

Options:
  --output FILE      where to write it (default as above, under the repository root)
  --stdout           print it instead
  --branch B         the base branch pushes to which start a run (default main)
  --runs-on LABEL    the runner of every job (default ubuntu-latest); STAGE=LABEL for one
  --install COMMAND  the shell command that puts cdp on the runner's PATH (default: fail
                     with a message when it is not there already)
  --phase N          the rollout phase the jobs run with (default the pipeline's)
  --on merged-release  run only for a push that merges a release pull request (the
                     publish half of the PR-first flow: release-pr runs on every push,
                     publish when its pull request is merged); default every push

PIPELINE is found as `cdp run` finds it (default: the project's cdp.lua or
.cdp/pipeline.lua; `cdp init --github-actions` writes both).

Examples:
  cdp export github-actions                    .github/workflows/cdp-release.yml for cdp.lua
  cdp export github-actions release --runs-on publish=locked-down --stdout
  cdp export gitlab-ci --install "make -C /opt/cdp-src install PREFIX=/usr/local"]],
}

local SPEC = { ["--output"] = "value", ["--stdout"] = "flag", ["--branch"] = "value", ["--runs-on"] = "list",
  ["--install"] = "value", ["--phase"] = "value", ["--on"] = "value" }

-- What a push of a merged release PR looks like on the base branch: its squashed title
-- (release.summary's "chore(release): ..."), or a merge commit naming its branch.
export.MERGED_RELEASE_IF = "github.event_name == 'workflow_dispatch' || "
  .. "contains(github.event.head_commit.message, 'chore(release)') || "
  .. "contains(github.event.head_commit.message, 'cdp/release/')"

export.DEFAULT_RUNNER = "ubuntu-latest"

-- Tokens the forge gives every job itself, rather than a secret the team stores.
local GITHUB_OWN = { GITHUB_TOKEN = "${{ github.token }}", CDP_GIT_TOKEN = "${{ github.token }}" }

-- The secrets STAGE (normalised) reads for itself, by environment variable, sorted:
-- { {setting, env} }.
function export.stage_secrets(p, stage)
  local later = {}
  for _, name in ipairs(stage.for_later or {}) do
    later[name] = true
  end
  local out = {}
  for _, name in ipairs(stage.settings or {}) do
    local d = p.declarations[name]
    if d and d.type == "secret" and not later[name] then
      out[#out + 1] = { setting = name, env = d.env }
    end
  end
  table.sort(out, function(a, b) return a.env < b.env end)
  return out
end

-- The gate a stage's job waits at, for PHASE: true when a person approves before the
-- stage runs or after the stage before it.
function export.gated(p, i, phase)
  local run = require "cdp.run"
  local before = run.gates(phase, p.stages[i])
  local after_previous = i > 1 and select(2, run.gates(phase, p.stages[i - 1]))
  return before or after_previous or false
end

function export.environment(p, stage)
  return ("%s-%s"):format(p.name, stage.name)
end

-- Whether STAGE pushes to the forge's pull requests, or publishes (its permissions).
local function does(stage, what)
  return stage.name == what
end

local function runner_for(opts, stage)
  return (opts.runs_on or {})[stage.name] or (opts.runs_on or {})["*"] or export.DEFAULT_RUNNER
end

local INSTALL_CHECK = [[command -v cdp >/dev/null || { echo "::error::cdp is not on this runner's PATH: export the workflow again with --install COMMAND (cdp help export)"; exit 1; }]]

local function stage_command(p, stage, opts, run_var, approved_by)
  local parts = { "cdp", "stage", stage.name, "--run", '"' .. run_var .. '"' }
  if opts.phase then
    parts[#parts + 1] = "--phase"
    parts[#parts + 1] = tostring(opts.phase)
  end
  if approved_by then
    parts[#parts + 1] = "--approved"
    parts[#parts + 1] = ("%q"):format(approved_by)
  end
  parts[#parts + 1] = opts.pipeline_arg
  return table.concat(parts, " ")
end

local function header(p, opts, what)
  return ("Generated by `cdp export %s %s`: the stages of pipeline %s, one job each.\n"
    .. "Edit the pipeline and export again rather than this file (cdp help export).")
    :format(what, opts.pipeline_arg, p.name)
end

-- The GitHub Actions workflow for pipeline P. OPTS: pipeline_arg (how jobs name the
-- pipeline), branch, runs_on ({stage|"*" = label}), install, phase.
function export.github_actions(p, opts)
  local phase = opts.phase or p.phase
  local jobs = {}
  for i, stage in ipairs(p.stages) do
    local env = { "CDP_GIT_TOKEN", GITHUB_OWN.CDP_GIT_TOKEN }
    for _, s in ipairs(export.stage_secrets(p, stage)) do
      if s.env ~= "CDP_GIT_TOKEN" then
        env[#env + 1] = s.env
        env[#env + 1] = GITHUB_OWN[s.env] or ("${{ secrets.%s }}"):format(s.env)
      end
    end
    local gated = export.gated(p, i, phase)
    local environment = gated and export.environment(p, stage) or nil
    local permissions = { "contents", "write" } -- the run state, tags, the release branch
    if does(stage, "merge") then
      permissions[#permissions + 1] = "pull-requests"
      permissions[#permissions + 1] = "write"
    end
    if does(stage, "publish") then
      permissions[#permissions + 1] = "id-token" -- Trusted Publishing
      permissions[#permissions + 1] = "write"
    end
    jobs[#jobs + 1] = stage.name
    jobs[#jobs + 1] = yaml.map {
      "name", stage.name,
      -- the first job decides for all: the others need it
      "if", i == 1 and opts.on == "merged-release" and export.MERGED_RELEASE_IF or nil,
      "needs", i > 1 and p.stages[i - 1].name or nil,
      "runs-on", runner_for(opts, stage),
      "environment", environment,
      "permissions", yaml.map(permissions),
      "steps", {
        yaml.map { "name", "Check out with full history", "uses", "actions/checkout@v4",
          "with", yaml.map { "fetch-depth", 0 } },
        yaml.map { "name", "Install cdp", "run", opts.install or INSTALL_CHECK },
        yaml.map { "name", "Git identity for release commits", "run",
          'git config user.name "github-actions[bot]"\n'
            .. 'git config user.email "41898282+github-actions[bot]@users.noreply.github.com"\n' },
        yaml.map { "name", "cdp stage " .. stage.name, "env", yaml.map(env),
          "run", stage_command(p, stage, { phase = opts.phase, pipeline_arg = opts.pipeline_arg }, "$CDP_RUN",
            environment and ("GitHub environment " .. environment)) },
      },
    }
  end
  local doc = yaml.map {
    "name", "cdp " .. p.name,
    "on", yaml.map {
      "push", yaml.map { "branches", { opts.branch or "main" } },
      "workflow_dispatch", yaml.map {},
    },
    "concurrency", yaml.map { "group", ("cdp-%s-${{ github.ref_name }}"):format(p.name), "cancel-in-progress", false },
    "permissions", yaml.map { "contents", "read" },
    "env", yaml.map { "CDP_RUN", "${{ github.run_id }}-${{ github.run_attempt }}" },
    "jobs", yaml.map(jobs),
  }
  return yaml.encode(doc, header(p, opts, "github-actions"))
end

-- The audience of the registry's Trusted Publishing: the host of its Web API, which
-- for crates.io is not its index's.
local function registry_audience(p)
  local d = p.declarations.registry_index
  local value = p.settings and p.settings.registry_index or (d and d.default) or ""
  local host = value:gsub("^sparse%+", ""):match("^%a+://([^/:]+)") or "crates.io"
  return host == "index.crates.io" and "crates.io" or host
end

-- The GitLab CI file for pipeline P (OPTS as for github_actions).
function export.gitlab_ci(p, opts)
  local phase = opts.phase or p.phase
  local names, jobs = {}, {}
  for i, stage in ipairs(p.stages) do
    names[i] = stage.name
    local gated = export.gated(p, i, phase)
    local secrets = export.stage_secrets(p, stage)
    -- a job with secrets runs in an environment of its own, so project variables can be
    -- scoped to it; a gated one is a protected environment and waits for a person
    local environment = (gated or #secrets > 0) and yaml.map {
      "name", export.environment(p, stage),
      "action", not gated and "prepare" or nil,
    } or nil
    local script = stage_command(p, stage, { phase = opts.phase, pipeline_arg = opts.pipeline_arg }, "$CDP_RUN",
      gated and ("GitLab environment " .. export.environment(p, stage)) or nil)
    local blocks
    if gated then
      blocks = false
    end
    jobs[#jobs + 1] = "cdp-" .. stage.name
    jobs[#jobs + 1] = yaml.map {
      "stage", stage.name,
      "extends", ".cdp",
      "needs", { i > 1 and ("cdp-" .. p.stages[i - 1].name) or nil },
      "tags", (opts.runs_on or {})[stage.name] and { opts.runs_on[stage.name] } or nil,
      "environment", environment,
      "when", gated and "manual" or nil,
      "allow_failure", blocks, -- a manual job that blocks the ones after it
      "id_tokens", does(stage, "publish") and yaml.map { "CDP_ID_TOKEN", yaml.map { "aud", registry_audience(p) } } or nil,
      "script", { script },
    }
  end
  local top = {
    "workflow", yaml.map { "rules", {
      yaml.map { "if", ('$CI_COMMIT_BRANCH == "%s" && $CI_PIPELINE_SOURCE == "push"%s'):format(opts.branch or "main",
        opts.on == "merged-release" and ' && ($CI_COMMIT_MESSAGE =~ /chore\\(release\\)/ || $CI_COMMIT_MESSAGE =~ /cdp\\/release\\//)' or "") },
      yaml.map { "if", '$CI_PIPELINE_SOURCE == "web"' },
    } },
    "stages", names,
    "variables", yaml.map { "CDP_RUN", "$CI_PIPELINE_ID", "GIT_DEPTH", "0" },
    ".cdp", yaml.map {
      "tags", (opts.runs_on or {})["*"] and { opts.runs_on["*"] } or nil,
      -- one run at a time per branch
      "resource_group", ("cdp-%s-$CI_COMMIT_REF_SLUG"):format(p.name),
      "before_script", {
        opts.install or "command -v cdp >/dev/null || { echo \"cdp is not on this runner's PATH: export again with --install COMMAND\"; exit 1; }",
        'git config user.name "${GITLAB_USER_NAME:-cdp}"',
        'git config user.email "${GITLAB_USER_EMAIL:-cdp@localhost}"',
      },
    },
  }
  for _, v in ipairs(jobs) do
    top[#top + 1] = v
  end
  return yaml.encode(yaml.map(top), header(p, opts, "gitlab-ci")
    .. "\nSecrets: CDP_GIT_TOKEN (pushes the run state; a project access token with write_repository)"
    .. "\nfor every job; each other secret as a masked variable scoped to its job's environment.")
end

local TARGETS = {
  ["github-actions"] = { make = export.github_actions, path = function(p) return ".github/workflows/cdp-" .. p.name .. ".yml" end },
  ["gitlab-ci"] = { make = export.gitlab_ci, path = function() return ".gitlab-ci.yml" end },
}

function export.run(args)
  local run_command = require "cdp.commands.run"
  local o, positional = run_command.parse(args, SPEC, "export")
  local target = TARGETS[positional[1] or ""]
  if not target or #positional > 2 then
    cli.usage_error("cdp export needs github-actions or gitlab-ci, and at most one PIPELINE", "export")
  end
  -- PIPELINE is found as `cdp run` finds it; none is the project's own (cdp.lua).
  local p, ref = run_command.load(positional[2])
  local path = positional[2] or ref
  local runs_on = {}
  for _, r in ipairs(o.runs_on or {}) do
    local stage, label = r:match("^([%w_-]+)=(.+)$")
    if stage then
      if not p.by_name[stage] then
        cli.usage_error(("--runs-on %s: no stage '%s' in pipeline %s"):format(r, stage, p.name), "export")
      end
      runs_on[stage] = label
    else
      runs_on["*"] = r
    end
  end
  local phase = run_command.parse_phase(o.phase, "export")
  if o.on and o.on ~= "push" and o.on ~= "merged-release" then
    cli.usage_error(("--on must be push or merged-release, not '%s'"):format(o.on), "export")
  end
  local run = require "cdp.run"
  local fs = require "cdp.fs"
  local root = run.root()
  local abs = path:sub(1, 1) == "/" and path or fs.join(assert(fs.cwd()), path)
  -- jobs name the pipeline as a path in their checkout
  local arg = abs:sub(1, #root + 1) == root .. "/" and abs:sub(#root + 2) or path
  local text = target.make(p, { pipeline_arg = arg, branch = o.branch, runs_on = runs_on, install = o.install,
    phase = phase, on = o.on })
  if o.stdout then
    io.stdout:write(text)
    return cli.EXIT.ok
  end
  local out = o.output or (root .. "/" .. target.path(p))
  assert(fs.mkdir(fs.dirname(out), { parents = true }))
  local ok, err = fs.write(out, text)
  if not ok then
    io.stderr:write("cdp: ", err, "\n")
    return cli.EXIT.failed
  end
  io.stdout:write(("wrote %s: %d jobs, one per stage of %s\n"):format(out, #p.stages, p.name))
  return cli.EXIT.ok
end

return export
