local commits = require "cdp.commits"

describe("cdp.commits.parse", function()
  it("reads type, scope and description", function()
    local c = commits.parse("feat(parser): accept trailing commas")
    assert.is_true(c.conventional)
    assert.are.equal("feat", c.type)
    assert.are.equal("parser", c.scope)
    assert.are.equal("accept trailing commas", c.description)
    assert.is_false(c.breaking)
    assert.are.equal("", c.body)
    assert.are.same({}, c.footers)
  end)

  it("takes types case-insensitively and scopes with odd characters", function()
    local c = commits.parse("Fix(core/io-v2): handle EINTR")
    assert.are.equal("fix", c.type)
    assert.are.equal("core/io-v2", c.scope)
    assert.is_nil(commits.parse("docs(): x").scope)
  end)

  it("marks '!' after the type or scope as breaking", function()
    local c = commits.parse("refactor!: drop the old API")
    assert.is_true(c.breaking)
    assert.are.equal("refactor", c.type)
    assert.are.equal("drop the old API", c.breaking_note)
    c = commits.parse("feat(api)!: rename Client::get")
    assert.is_true(c.breaking)
    assert.are.equal("api", c.scope)
  end)

  it("reads body and footers, including multi-line footer values", function()
    local c = commits.parse(table.concat({
      "fix: prevent racing of requests",
      "",
      "Introduce a request id and a reference to latest request.",
      "",
      "Remove timeouts which were used to mitigate the racing issue but are",
      "obsolete now.",
      "",
      "Reviewed-by: Z",
      "Refs #123",
      "Co-authored-by: A <a@example.com>",
      "  continued here",
    }, "\n"))
    assert.are.equal("Introduce a request id and a reference to latest request.\n\n" ..
      "Remove timeouts which were used to mitigate the racing issue but are\nobsolete now.", c.body)
    assert.are.same({
      { token = "Reviewed-by", value = "Z" },
      { token = "Refs", value = "#123" },
      { token = "Co-authored-by", value = "A <a@example.com>\n  continued here" },
    }, c.footers)
    assert.is_false(c.breaking)
  end)

  it("finds BREAKING CHANGE and BREAKING-CHANGE footers", function()
    local c = commits.parse("feat: allow config objects\n\nBREAKING CHANGE: `extends` now merges")
    assert.is_true(c.breaking)
    assert.are.equal("`extends` now merges", c.breaking_note)
    c = commits.parse("chore: bump msrv\n\nSome words.\n\nBREAKING-CHANGE: needs rustc 1.80\nRefs: #9")
    assert.is_true(c.breaking)
    assert.are.equal("needs rustc 1.80", c.breaking_note)
    assert.are.equal("Some words.", c.body)
  end)

  it("does not take a lower-case 'breaking change' or a mid-body mention as breaking", function()
    assert.is_false(commits.parse("fix: x\n\nbreaking change: no").breaking)
    assert.is_false(commits.parse("fix: x\n\nBREAKING CHANGE: not a footer\n\nbecause this paragraph follows").breaking)
  end)

  it("keeps non-conventional messages as type 'other'", function()
    for _, msg in ipairs { "Update README", "WIP", "feat:no space", "feat : spaced", "(scope): no type",
      "Merge branch 'topic'", "feat: ", "" } do
      local c = commits.parse(msg)
      assert.are.equal("other", c.type, msg)
      assert.is_false(c.conventional, msg)
      assert.are.equal((msg:gsub("%s+$", "")), c.description)
    end
  end)

  it("recognises git's Revert \"...\" and conventional revert: commits", function()
    local c = commits.parse('Revert "feat: add x"\n\nThis reverts commit 0123456789abcdef0123456789abcdef01234567.')
    assert.are.equal("revert", c.type)
    assert.are.same({ header = "feat: add x", id = "0123456789abcdef0123456789abcdef01234567" }, c.revert)
    c = commits.parse("revert: feat: add x\n\nRefs: 0123abc")
    assert.are.equal("revert", c.type)
    assert.are.same({ header = "feat: add x", id = "0123abc" }, c.revert)
    c = commits.parse('Revert "Revert "fix: y""')
    assert.are.same({ header = 'Revert "fix: y"' }, c.revert)
  end)

  it("raises on misuse", function()
    assert.has_error(function() commits.parse(nil) end, "commits.parse: expected a string, got nil")
  end)
end)

describe("cdp.commits.effective", function()
  local function list(spec)
    local out = {}
    for i, s in ipairs(spec) do
      out[i] = { id = s[1], parsed = commits.parse(s[2]) }
    end
    return out
  end
  local function ids(l)
    local out = {}
    for i, c in ipairs(l) do out[i] = c.id end
    return out
  end

  it("cancels a revert and the commit it reverts when both are in the set", function()
    local kept, cancelled = commits.effective(list {
      { "cccc000", 'Revert "feat: a"\n\nThis reverts commit aaaa000.' },
      { "bbbb000", "fix: b" },
      { "aaaa000", "feat: a" },
    })
    assert.are.same({ "bbbb000" }, ids(kept))
    assert.are.same({ "cccc000", "aaaa000" }, ids(cancelled))
    assert.are.equal("aaaa000", cancelled[1].cancelled_by)
    assert.are.equal("cccc000", cancelled[2].cancelled_by)
  end)

  it("keeps a revert whose target was already released", function()
    local kept = commits.effective(list { { "cccc000", 'Revert "feat: old"\n\nThis reverts commit 9999999.' } })
    assert.are.same({ "cccc000" }, ids(kept))
  end)

  it("matches by header when a revert names no commit", function()
    local kept = commits.effective(list {
      { "c3", "revert: feat: a" }, { "c2", "feat: a" }, { "c1", "feat: a" },
    })
    assert.are.same({ "c1" }, ids(kept))
  end)

  it("brings a commit back when its revert is reverted", function()
    local kept = commits.effective(list {
      { "2222222", 'Revert "Revert "feat: a""\n\nThis reverts commit 1111111.' },
      { "1111111", 'Revert "feat: a"\n\nThis reverts commit aaaaaaa.' },
      { "aaaaaaa", "feat: a" },
    })
    assert.are.same({ "aaaaaaa" }, ids(kept))
  end)
end)
