-- The alert rules most teams start from: failures, interruptions and
-- approvals go to every sink given; successes only to sinks named in
-- opts.progress (a chat channel, a JSON lines file).
--
--   alerts = require("cdp.alerts.default") {
--     sinks = { mail = { email = "smtp://...", from = "...", to = { "..." } },
--               chat = { slack = "https://hooks.slack.example/..." } },
--     progress = { "chat" },
--   }
return function(opts)
  opts = opts or {}
  local sinks = opts.sinks or {}
  local all = {}
  for name in pairs(sinks) do
    all[#all + 1] = name
  end
  table.sort(all)
  local rules = {}
  if #all > 0 then
    rules[#rules + 1] = { on = "stage.failed", to = all }
    rules[#rules + 1] = { on = "run.failed", to = all }
    rules[#rules + 1] = { on = "approval.needed", to = all }
  end
  local progress = opts.progress or {}
  if #progress > 0 then
    for _, event in ipairs { "run.started", "stage.passed", "run.finished" } do
      rules[#rules + 1] = { on = event, to = progress }
    end
  end
  local alerts = { sinks = sinks, rules = rules }
  for _, k in ipairs { "retries", "backoff", "timeout", "flush", "capacity" } do
    alerts[k] = opts[k]
  end
  return alerts
end
