-- The trace view for Neovim: `neuraldbg/trace` (with `compare = true`,
-- lsp/README.md) shown in a scratch buffer as a timeline table: step, event,
-- line, the locals that changed since the previous frame of the same call
-- (+new, ~changed, -removed, coloured), the real run beside a prediction with
-- the first divergence marked, and the model's confidence where the real run
-- was rated. <CR> on a row puts the cursor on that frame's line in the source
-- window; q closes the view.

local M = {}

M.filetype = "neuraldbg-trace"
local ns = vim.api.nvim_create_namespace("neuraldbg-trace")

local function set_highlights()
  vim.api.nvim_set_hl(0, "NeuraldbgTraceNew", { default = true, link = "DiffAdd" })
  vim.api.nvim_set_hl(0, "NeuraldbgTraceChanged", { default = true, link = "DiffChange" })
  vim.api.nvim_set_hl(0, "NeuraldbgTraceRemoved", { default = true, link = "DiffDelete" })
  vim.api.nvim_set_hl(0, "NeuraldbgTraceDivergence", { default = true, link = "DiagnosticWarn" })
  vim.api.nvim_set_hl(0, "NeuraldbgTraceHeader", { default = true, link = "Title" })
end

local KIND_MARK = { new = "+", changed = "~", removed = "-" }
local KIND_HL = { new = "NeuraldbgTraceNew", changed = "NeuraldbgTraceChanged", removed = "NeuraldbgTraceRemoved" }

--- The previous frame of the same call as frames[i] (nil: the call's first frame).
local function previous_in_scope(frames, i)
  local depth = frames[i].depth
  if frames[i].event == "call" then
    return nil
  end
  for j = i - 1, 1, -1 do
    if frames[j].depth < depth then
      return nil
    end
    if frames[j].depth == depth then
      return frames[j]
    end
  end
  return nil
end

local function sorted_keys(t)
  local keys = vim.tbl_keys(t)
  table.sort(keys)
  return keys
end

--- The locals of frame i that are new, changed or gone: { {name, kind, value, before} }.
function M.changes(frames, i)
  local before = previous_in_scope(frames, i)
  local now = frames[i].locals or {}
  local out = {}
  -- a JSON object decodes without its key order: sort for a stable table
  for _, name in ipairs(sorted_keys(now)) do
    local value = now[name]
    if before == nil or (before.locals or {})[name] == nil then
      table.insert(out, { name = name, kind = "new", value = value })
    elseif before.locals[name] ~= value then
      table.insert(out, { name = name, kind = "changed", value = value, before = before.locals[name] })
    end
  end
  if before ~= nil then
    for _, name in ipairs(sorted_keys(before.locals or {})) do
      if now[name] == nil then
        table.insert(out, { name = name, kind = "removed", value = "", before = before.locals[name] })
      end
    end
  end
  return out
end

local function event_text(frame)
  local text = frame.event
  if frame.event == "return" or frame.event == "exception" then
    text = text .. " " .. tostring(frame.value == vim.NIL and "None" or frame.value or "None")
  end
  if frame.depth > 0 then
    text = string.rep("· ", frame.depth) .. text .. " (" .. frame["function"] .. ")"
  end
  return text
end

local function percent(p)
  if p >= 0.995 then
    return "100%"
  elseif p < 0.0001 then
    return "<0.01%"
  end
  return string.format(p < 0.1 and "%.2f%%" or "%.0f%%", p * 100)
end

--- One side's cell texts for frame i: event, line, changes (with their kinds).
local function cells(frames, i)
  local frame = frames[i]
  local parts, spans = {}, {}
  local at = 0
  for _, c in ipairs(M.changes(frames, i)) do
    local text = c.kind == "removed" and string.format("-%s (was %s)", c.name, c.before)
      or string.format("%s%s=%s", KIND_MARK[c.kind], c.name, c.value)
    table.insert(spans, { start = at, finish = at + #text, kind = c.kind, name = c.name })
    table.insert(parts, text)
    at = at + #text + 1
  end
  return {
    event = event_text(frame),
    line = frame.line > 0 and tostring(frame.line) or "?",
    locals = table.concat(parts, " "),
    spans = spans,
  }
end

--- The view of one `neuraldbg/trace` result: { lines = {...}, rows = { [lnum] = {step, line} },
--- marks = { {lnum, col, end_col, hl} } }. Pure: the buffer only shows it.
function M.render(result)
  local lines, rows, marks = {}, {}, {}
  local comparison = type(result.comparison) == "table" and result.comparison or {}
  local executed = type(comparison.executed) == "table" and comparison.executed or nil
  local predicted = comparison.predicted == true
  local divergence = type(comparison.divergence) == "table" and comparison.divergence or nil
  local confidence = type(comparison.confidence) == "table" and comparison.confidence or nil
  local call = (result.call ~= nil and result.call ~= "") and result.call or result["function"]
  local named = type(result.model) == "string" and result.model ~= result.backend -- replay names itself as its model
  local backend = named and (result.backend .. " · model " .. result.model) or result.backend
  table.insert(lines, string.format("%s · %s · %d frames (%s)", call, backend, #result.frames, result.status))
  table.insert(marks, { #lines, 0, #lines[#lines], "NeuraldbgTraceHeader" })
  if result.error ~= nil and result.error ~= vim.NIL then
    table.insert(lines, "error: " .. result.error)
  end
  if divergence then
    table.insert(lines, "! " .. divergence.message)
    table.insert(marks, { #lines, 0, #lines[#lines], "NeuraldbgTraceDivergence" })
  end
  if predicted and not executed and type(comparison.reason) == "string" then
    table.insert(lines, "no real run beside it: " .. comparison.reason)
  end
  if type(comparison.agreement) == "table" then
    table.insert(lines, string.format("model agrees with the real run on %d of %d frames",
      comparison.agreement.agreeing, comparison.agreement.frames))
  end
  table.insert(lines, "<CR>: go to the frame's line · q: close · +new ~changed -removed")
  table.insert(lines, "")

  local left = predicted and "predicted" or "trace"
  local header = string.format("%5s  %-24s %5s  %s", "step", left .. " event", "line", "locals changed")
  if executed then
    header = header .. "  │ " .. string.format("%-24s %5s  %s", "executed event", "line", "locals changed")
  end
  if confidence then
    header = header .. "  confidence"
  end
  table.insert(lines, header)
  table.insert(marks, { #lines, 0, #header, "NeuraldbgTraceHeader" })

  local n = math.max(#result.frames, executed and #executed.frames or 0)
  for i = 1, n do
    local step = i - 1
    local mark = (divergence and divergence.step == step) and "!" or " "
    local text = string.format("%s%4d  ", mark, step)
    local spans = {}
    local line_no
    local function add_side(frames, width)
      if frames[i] == nil then
        text = text .. string.rep(" ", width)
        return
      end
      local c = cells(frames, i)
      line_no = line_no or frames[i].line
      local cell = string.format("%-24s %5s  ", c.event, c.line)
      local start = #text + #cell
      for _, s in ipairs(c.spans) do
        table.insert(spans, { start + s.start, start + s.finish, KIND_HL[s.kind] })
      end
      text = text .. cell .. c.locals
      return c
    end
    add_side(result.frames, 24 + 1 + 5 + 2)
    if executed then
      text = text .. "  │ "
      add_side(executed.frames, 0)
    end
    if confidence then
      local p = confidence[i]
      text = text .. "  " .. ((type(p) == "number") and percent(p) or "")
    end
    table.insert(lines, text)
    rows[#lines] = { step = step, line = line_no or 0 }
    for _, s in ipairs(spans) do
      table.insert(marks, { #lines, s[1], s[2], s[3] })
    end
    if mark == "!" then
      table.insert(marks, { #lines, 0, 1, "NeuraldbgTraceDivergence" })
    end
  end
  return { lines = lines, rows = rows, marks = marks }
end

--- The qualified name of the function around (row, 1-based) in buf, from its `def`/`class` lines.
function M.function_at(buf, row)
  local lines = vim.api.nvim_buf_get_lines(buf, 0, row, false)
  local function header(text)
    local indent, name = text:match("^(%s*)async%s+def%s+([%w_]+)")
    if name then
      return indent, "def", name
    end
    return text:match("^(%s*)(%a+)%s+([%w_]+)")
  end
  -- only blocks that contain the cursor's line: less indented than it (or that line itself)
  local limit = math.huge
  local cur = lines[row] or ""
  local _, cur_kind = header(cur)
  if cur:match("%S") and cur_kind ~= "def" and cur_kind ~= "class" then
    limit = #cur:match("^(%s*)")
  end
  local names = {}
  for i = #lines, 1, -1 do
    local indent, kind, name = header(lines[i])
    if (kind == "def" or kind == "class") and #indent < limit then
      if kind == "def" or #names > 0 then
        table.insert(names, 1, name)
      end
      limit = #indent
      if limit == 0 then
        break
      end
    end
  end
  return #names > 0 and table.concat(names, ".") or nil
end

local function jump(view_buf)
  local row = vim.api.nvim_win_get_cursor(0)[1]
  local info = vim.b[view_buf].neuraldbg_rows and vim.b[view_buf].neuraldbg_rows[tostring(row)]
  local source = vim.b[view_buf].neuraldbg_source
  if not info or info.line <= 0 or not source or not vim.api.nvim_buf_is_valid(source) then
    return
  end
  local win = vim.fn.bufwinid(source)
  if win == -1 then
    vim.cmd("wincmd p")
    vim.api.nvim_win_set_buf(0, source)
    win = vim.api.nvim_get_current_win()
  end
  vim.api.nvim_set_current_win(win)
  local last = vim.api.nvim_buf_line_count(source)
  vim.api.nvim_win_set_cursor(win, { math.min(info.line, last), 0 })
  vim.cmd("normal! zv")
end

--- Shows `result` (a neuraldbg/trace answer for `fn` in `source`) in the trace buffer.
function M.open(source, fn, result)
  set_highlights()
  local view = M.render(result)
  local name = "neuraldbg://trace/" .. vim.fn.fnamemodify(vim.api.nvim_buf_get_name(source), ":t") .. "::" .. fn
  local buf = vim.fn.bufnr(name)
  if buf == -1 then
    buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_name(buf, name)
    vim.bo[buf].buftype = "nofile"
    vim.bo[buf].bufhidden = "hide"
    vim.bo[buf].swapfile = false
    vim.bo[buf].filetype = M.filetype
    vim.keymap.set("n", "<CR>", function()
      jump(buf)
    end, { buffer = buf, desc = "neuraldbg: go to this frame's line" })
    vim.keymap.set("n", "q", "<cmd>close<CR>", { buffer = buf, desc = "neuraldbg: close the trace view" })
  end
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, view.lines)
  vim.bo[buf].modifiable = false
  vim.api.nvim_buf_clear_namespace(buf, ns, 0, -1)
  for _, m in ipairs(view.marks) do
    vim.api.nvim_buf_set_extmark(buf, ns, m[1] - 1, m[2], { end_col = m[3], hl_group = m[4] })
  end
  local rows = {}
  for lnum, info in pairs(view.rows) do
    rows[tostring(lnum)] = info
  end
  vim.b[buf].neuraldbg_rows = rows
  vim.b[buf].neuraldbg_source = source
  local win = vim.fn.bufwinid(buf)
  if win == -1 then
    vim.cmd("botright split")
    vim.api.nvim_win_set_buf(0, buf)
  else
    vim.api.nvim_set_current_win(win)
  end
  return buf
end

--- Trace the function under the cursor (client: the neuraldbg client) and open the view.
function M.show(client, bufnr, on_done)
  local row = vim.api.nvim_win_get_cursor(0)[1]
  local fn = M.function_at(bufnr, row)
  if not fn then
    vim.notify("neuraldbg: put the cursor in a function", vim.log.levels.WARN)
    return
  end
  client:request("neuraldbg/trace", { uri = vim.uri_from_bufnr(bufnr), ["function"] = fn, compare = true },
    function(err, result)
      if err then
        vim.notify("neuraldbg: " .. err.message, vim.log.levels.ERROR)
      else
        local buf = M.open(bufnr, fn, result)
        if on_done then
          on_done(buf)
        end
      end
    end, bufnr)
end

return M
