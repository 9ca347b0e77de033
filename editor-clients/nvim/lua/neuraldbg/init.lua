-- neuraldbg for Neovim 0.11+: the language server (vim.lsp.config /
-- vim.lsp.enable, or vim.lsp.start for one buffer) and an nvim-dap adapter
-- entry for the debug adapter that runs inside the server.
--
--   require("neuraldbg").setup({
--     cmd = { "neuraldbg", "serve" },            -- or { "python3", "-m", "neuraldbg", "serve" }
--     settings = { neuraldbg = { backend = "exec", allowExecution = true } },
--   })
--
-- Settings are the server's (lsp/README.md "Settings"); they are sent as
-- initializationOptions and answered to workspace/configuration.

local M = {}

M.name = "neuraldbg"

M.defaults = {
  cmd = { "neuraldbg", "serve" },
  filetypes = { "python" },
  root_markers = { "pyproject.toml", "setup.py", "setup.cfg", ".git" },
  settings = {
    neuraldbg = {
      backend = "exec",
      allowExecution = false, -- let the server run workspace code only in trusted projects
    },
  },
  inlay_hints = true, -- turn inlay hints on in attached buffers
  dap = true, -- register the nvim-dap adapter entry when nvim-dap is installed
}

--- The latest neuraldbg/status payload ({state, backend, model?, message, queue, progress?}).
M.status = nil

local function on_status(_, result)
  M.status = result
  pcall(vim.api.nvim_exec_autocmds, "User", { pattern = "NeuraldbgStatus", modeline = false, data = result })
end

--- The code lens "Simulate f(…): set an input" carries no call: ask for one.
local function set_entry_command(command, ctx)
  local args = command.arguments or {}
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if not client then
    return
  end
  local function send(call)
    client:request("workspace/executeCommand", {
      command = "neuraldbg.setEntry",
      arguments = { args[1], args[2], call },
    }, function(err, result)
      if err then
        vim.notify("neuraldbg: " .. err.message, vim.log.levels.ERROR)
      elseif result and not result.ok then
        vim.notify("neuraldbg: " .. (result.error or "input rejected"), vim.log.levels.WARN)
      end
    end, ctx.bufnr)
  end
  if args[3] ~= nil then
    send(args[3])
  else
    vim.ui.input({ prompt = "neuraldbg: call " .. tostring(args[2]) .. " as: " }, function(call)
      if call and call ~= "" then
        send(call)
      end
    end)
  end
end

--- The vim.lsp config table for neuraldbg.
function M.config(opts)
  opts = vim.tbl_deep_extend("force", {}, M.defaults, opts or {})
  return {
    name = M.name,
    cmd = opts.cmd,
    filetypes = opts.filetypes,
    root_markers = opts.root_markers,
    root_dir = opts.root_dir,
    settings = opts.settings,
    init_options = opts.settings.neuraldbg,
    handlers = { ["neuraldbg/status"] = on_status },
    commands = { ["neuraldbg.setEntry"] = set_entry_command },
    on_attach = function(client, bufnr)
      if opts.inlay_hints and client:supports_method("textDocument/inlayHint") then
        vim.lsp.inlay_hint.enable(true, { bufnr = bufnr })
      end
      if opts.on_attach then
        opts.on_attach(client, bufnr)
      end
    end,
  }
end

--- Register and enable neuraldbg for Python buffers (vim.lsp.config + vim.lsp.enable).
function M.setup(opts)
  opts = vim.tbl_deep_extend("force", {}, M.defaults, opts or {})
  vim.lsp.config(M.name, M.config(opts))
  vim.lsp.enable(M.name)
  if opts.dap then
    M.setup_dap()
  end
  vim.api.nvim_create_user_command("NeuraldbgStatus", function()
    local s = M.status
    print(s and string.format("neuraldbg: %s (%s) %s", s.state, s.backend, s.message) or "neuraldbg: no status yet")
  end, { desc = "Show the neuraldbg server status" })
  vim.api.nvim_create_user_command("NeuraldbgSetEntry", function(cmd)
    M.set_entry(cmd.args)
  end, { nargs = 1, desc = "Use this call as the input of the function under the cursor" })
  vim.api.nvim_create_user_command("NeuraldbgTrace", function()
    M.show_trace()
  end, { desc = "Show the trace of the function under the cursor as a table (<CR> on a row: go to its line)" })
  return opts
end

--- Start (or reuse) the server for one buffer directly (scripts, tests).
function M.start(bufnr, opts)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local config = M.config(opts)
  config.root_dir = config.root_dir or vim.fs.root(bufnr, config.root_markers) or vim.fn.getcwd()
  return vim.lsp.start(config, { bufnr = bufnr })
end

--- The neuraldbg client attached to a buffer (or any neuraldbg client).
function M.client(bufnr)
  local clients = vim.lsp.get_clients({ name = M.name, bufnr = bufnr })
  if #clients == 0 and bufnr then
    clients = vim.lsp.get_clients({ name = M.name })
  end
  return clients[1]
end

--- The buffer (default: the current one) and its neuraldbg client, or nil after telling the user.
local function attached(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client then
    vim.notify("neuraldbg: no server attached", vim.log.levels.WARN)
  end
  return bufnr, client
end

--- Set the input of the function under the cursor (neuraldbg.setEntry).
function M.set_entry(call, bufnr)
  local client
  bufnr, client = attached(bufnr)
  if not client then
    return
  end
  local pos = vim.api.nvim_win_get_cursor(0)
  client:request("workspace/executeCommand", {
    command = "neuraldbg.setEntry",
    arguments = { { uri = vim.uri_from_bufnr(bufnr), position = { line = pos[1] - 1, character = pos[2] }, call = call } },
  }, function(err, result)
    if err then
      vim.notify("neuraldbg: " .. err.message, vim.log.levels.ERROR)
    elseif result and not result.ok then
      vim.notify("neuraldbg: " .. (result.error or "input rejected"), vim.log.levels.WARN)
    end
  end, bufnr)
end

--- The trace view of the function under the cursor (a scratch buffer, see
--- neuraldbg/trace_view.lua); on_done(view_buf) once it shows.
function M.show_trace(bufnr, on_done)
  local client
  bufnr, client = attached(bufnr)
  if not client then
    return
  end
  require("neuraldbg.trace_view").show(client, bufnr, on_done)
end

--- Ask the server for its in-process debug adapter and hand nvim-dap a
--- server-type adapter: callback({type = "server", host, port}).
function M.dap_adapter(callback, bufnr)
  local client = M.client(bufnr)
  if not client then
    vim.notify("neuraldbg: start the language server first (open a Python file)", vim.log.levels.ERROR)
    return
  end
  client:request("neuraldbg/debugAdapter", vim.empty_dict(), function(err, result)
    if err or not result or not result.port then
      vim.notify("neuraldbg: " .. ((err and err.message) or "debug adapter not available"), vim.log.levels.ERROR)
      return
    end
    callback({ type = "server", host = "127.0.0.1", port = result.port })
  end)
end

--- The nvim-dap configuration: debug the function under the cursor. No
--- allowExecution here: the adapter in the server follows the server's own
--- allowExecution setting (settings.neuraldbg), which a launch cannot raise.
M.dap_configuration = {
  type = "neuraldbg",
  request = "launch",
  name = "neuraldbg: simulate the function at the cursor",
  program = "${file}",
  stopOnEntry = true,
}

--- Register the adapter entry with nvim-dap if it is installed (returns false otherwise).
function M.setup_dap()
  local ok, dap = pcall(require, "dap")
  if not ok then
    return false
  end
  dap.adapters.neuraldbg = function(callback, _config)
    M.dap_adapter(callback)
  end
  dap.configurations.python = dap.configurations.python or {}
  table.insert(dap.configurations.python, M.dap_configuration)
  return true
end

return M
