-- Headless Neovim driving neuraldbg through editor-clients/nvim:
--   nvim --headless --clean -l nvim_e2e.lua
-- Environment: NEURALDBG_REPO, NEURALDBG_WORKDIR (a copy of examples/),
-- NEURALDBG_SERVER_CMD (JSON list), NEURALDBG_OUT (where results go as JSON).
-- Every step records what Neovim saw; pytest asserts on it.

local repo = assert(os.getenv("NEURALDBG_REPO"))
local workdir = assert(os.getenv("NEURALDBG_WORKDIR"))
local out_path = assert(os.getenv("NEURALDBG_OUT"))
local cmd = vim.json.decode(assert(os.getenv("NEURALDBG_SERVER_CMD")))

local results = { steps = {}, errors = {} }

local function finish()
  local f = assert(io.open(out_path, "w"))
  f:write(vim.json.encode(results))
  f:close()
  vim.cmd("qa!")
end

local function fail(msg)
  table.insert(results.errors, msg)
  finish()
end

local function step(name, fn)
  local ok, err = pcall(fn)
  if not ok then
    fail(name .. ": " .. tostring(err))
  end
  table.insert(results.steps, name)
end

vim.opt.rtp:prepend(repo .. "/editor-clients/nvim")
local nd = require("neuraldbg")
nd.setup({
  cmd = cmd,
  root_markers = { ".neuraldbg-root" },
  settings = { neuraldbg = { backend = "exec", allowExecution = true, debounceMs = 50 } },
})
results.dap_registered = nd.setup_dap() -- false: nvim-dap is not installed here

local function client_for(buf)
  local ok = vim.wait(30000, function()
    local c = nd.client(buf)
    return c ~= nil and c.initialized
  end, 50)
  assert(ok, "the neuraldbg client did not start")
  return nd.client(buf)
end

local function hover_at(buf, row, col)
  vim.api.nvim_win_set_cursor(0, { row, col })
  local client = nd.client(buf)
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  for _ = 1, 40 do
    local res = vim.lsp.buf_request_sync(buf, "textDocument/hover", params, 20000)
    local r = res and res[client.id] and res[client.id].result
    local text = r and r.contents and r.contents.value or ""
    if not text:find("tracing…", 1, true) then
      return text
    end
    vim.wait(300)
  end
  return ""
end

local function line_of(buf, pattern)
  for i, l in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
    if l:find(pattern, 1, true) then
      return i, l
    end
  end
  error("no line with " .. pattern)
end

--- :NeuraldbgTrace's function with the cursor on `count = 0` (inside count_letter, away
--- from the row jumped to below); returns the view's buffer once it shows.
local function open_trace_view(buf)
  local row = line_of(buf, "count = 0")
  vim.api.nvim_win_set_cursor(0, { row, 4 })
  local view
  nd.show_trace(buf, function(b)
    view = b
  end)
  assert(vim.wait(60000, function()
    return view ~= nil
  end, 50), "the trace view did not open")
  return view
end

step("open strawberry", function()
  vim.cmd.edit(workdir .. "/strawberry.py")
  local buf = vim.api.nvim_get_current_buf()
  local client = client_for(buf)
  results.offset_encoding = client.offset_encoding
  results.server_name = client.name
  results.inline_completion_advertised = client.server_capabilities.inlineCompletionProvider ~= nil
end)

step("hover", function()
  local buf = vim.api.nvim_get_current_buf()
  local row, l = line_of(buf, "count += 1")
  results.hover_count = hover_at(buf, row, l:find("count", 1, true) - 1 + 1)
  local drow, dl = line_of(buf, "def count_letter")
  results.hover_def = hover_at(buf, drow, dl:find("count_letter", 1, true))
end)

step("inlay hints", function()
  local buf = vim.api.nvim_get_current_buf()
  local got = {}
  vim.wait(20000, function()
    got = vim.lsp.inlay_hint.get({ bufnr = buf })
    return #got >= 3
  end, 100)
  results.inlay_enabled = vim.lsp.inlay_hint.is_enabled({ bufnr = buf })
  results.inlay = {}
  for _, item in ipairs(got) do
    local label = item.inlay_hint.label
    if type(label) == "table" then
      local parts = {}
      for _, p in ipairs(label) do
        table.insert(parts, p.value)
      end
      label = table.concat(parts)
    end
    table.insert(results.inlay, { line = item.inlay_hint.position.line + 1, label = label })
  end
end)

step("status", function()
  vim.wait(10000, function()
    return nd.status ~= nil and nd.status.state == "ready"
  end, 50)
  results.status = nd.status
end)

step("trace view", function()
  local buf = vim.api.nvim_get_current_buf()
  local src_win = vim.api.nvim_get_current_win()
  local view = open_trace_view(buf)
  results.trace_view_filetype = vim.bo[view].filetype
  local lines = vim.api.nvim_buf_get_lines(view, 0, -1, false)
  results.trace_view_lines = lines
  local ns = vim.api.nvim_get_namespaces()["neuraldbg-trace"]
  results.trace_view_highlights = {}
  for _, m in ipairs(vim.api.nvim_buf_get_extmarks(view, ns, 0, -1, { details = true })) do
    local text = lines[m[2] + 1]:sub(m[3] + 1, m[4].end_col)
    table.insert(results.trace_view_highlights, { text = text, group = m[4].hl_group })
  end
  -- <CR> on the first row of line 13 (`count += 1`), as a user presses it
  local target
  for i, l in ipairs(lines) do
    if l:match("^[ !]%s*%d+%s+line%s+13%s") then
      target = i
      break
    end
  end
  assert(target, "no row for line 13 in the trace view")
  results.trace_view_row = lines[target]
  vim.api.nvim_set_current_win(vim.fn.bufwinid(view))
  vim.api.nvim_win_set_cursor(0, { target, 0 })
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes("<CR>", true, false, true), "x", false)
  results.after_jump = {
    file = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(0), ":t"),
    line = vim.api.nvim_win_get_cursor(0)[1],
    source_window = vim.api.nvim_get_current_win() == src_win,
  }
  vim.api.nvim_win_close(vim.fn.bufwinid(view), true)
  vim.api.nvim_set_current_win(src_win)
end)

step("edit and hover again", function()
  local buf = vim.api.nvim_get_current_buf()
  local row, l = line_of(buf, "count += 1")
  local col = l:find("1", 1, true) - 1
  vim.api.nvim_buf_set_text(buf, row - 1, col, row - 1, col + 1, { "2" })
  results.hover_after_edit = hover_at(buf, row, l:find("count", 1, true))
end)

step("code lens", function()
  local buf = vim.api.nvim_get_current_buf()
  local client = nd.client(buf)
  local res = vim.lsp.buf_request_sync(buf, "textDocument/codeLens", { textDocument = vim.lsp.util.make_text_document_params(buf) }, 20000)
  results.lenses = {}
  for _, lens in ipairs(res[client.id].result or {}) do
    table.insert(results.lenses, lens.command.title)
  end
end)

step("fill hole", function()
  vim.cmd.edit(workdir .. "/hole.py")
  local buf = vim.api.nvim_get_current_buf()
  local client = client_for(buf)
  local diags = {}
  vim.wait(20000, function()
    diags = vim.diagnostic.get(buf)
    return #diags > 0
  end, 50)
  results.hole_diagnostics = {}
  for _, d in ipairs(diags) do
    table.insert(results.hole_diagnostics, { line = d.lnum + 1, col = d.col, message = d.message })
  end
  local row = diags[1].lnum
  local ic = vim.lsp.buf_request_sync(buf, "textDocument/inlineCompletion", {
    textDocument = vim.lsp.util.make_text_document_params(buf),
    position = { line = row, character = diags[1].end_col },
    context = { triggerKind = 1 },
  }, 60000)
  local icr = ic[client.id].result
  local items = icr and (icr.items or icr) or {}
  results.inline_completion = items[1] and items[1].insertText or vim.NIL
  local params = {
    textDocument = vim.lsp.util.make_text_document_params(buf),
    range = { start = { line = row, character = 0 }, ["end"] = { line = row, character = 0 } },
    context = { diagnostics = vim.lsp.diagnostic.from(diags), only = { "quickfix" } },
  }
  local res = vim.lsp.buf_request_sync(buf, "textDocument/codeAction", params, 60000)
  local actions = res[client.id].result or {}
  results.actions = {}
  for _, a in ipairs(actions) do
    table.insert(results.actions, a.title)
  end
  assert(#actions > 0, "no code action")
  vim.lsp.util.apply_workspace_edit(actions[1].edit, client.offset_encoding)
  results.filled_line = vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1]
  vim.wait(20000, function()
    return #vim.diagnostic.get(buf) == 0
  end, 50)
  results.diagnostics_after_fill = #vim.diagnostic.get(buf)
  local orow, ol = line_of(buf, "out.append(best)")
  results.hover_after_fill = hover_at(buf, orow, ol:find("out", 1, true))
end)

step("debug adapter entry", function()
  local got
  nd.dap_adapter(function(adapter)
    got = adapter
  end)
  vim.wait(20000, function()
    return got ~= nil
  end, 50)
  results.dap_adapter = got
end)

step("trace view beside the real run", function()
  -- the replay backend: the trace is a prediction (the real run fed back through the model
  -- path), so the view puts the real run beside it
  vim.cmd.edit(workdir .. "/strawberry.py")
  local buf = vim.api.nvim_get_current_buf()
  local client = client_for(buf)
  client.settings.neuraldbg.backend = "replay"
  client:notify("workspace/didChangeConfiguration", { settings = client.settings })
  assert(vim.wait(30000, function()
    return nd.status ~= nil and nd.status.backend == "replay" and nd.status.state == "ready"
  end, 50), "the server did not switch to the replay backend")
  local view = open_trace_view(buf)
  results.compare_lines = vim.api.nvim_buf_get_lines(view, 0, -1, false)
end)

finish()
