--- JSON-RPC over the `codesphere bridge` child process, through vim.lsp.rpc.
---
--- vim.lsp.rpc.start changed its signature: Neovim 0.7-0.9 take
--- `start(cmd, cmd_args, dispatchers, extra_spawn_params)`, 0.10+ take
--- `start(cmd_list, dispatchers, extra)`. This module hides the difference.
local M = {}

--- An empty JSON object (a bare `{}` would be encoded as an array).
M.EMPTY = vim.empty_dict()

--- Starts `cmd` (a list: program and arguments) and returns a client
--- `{request = fn(method, params, cb(err, result)) -> ok, notify = fn(method, params) -> ok,
---   is_closing = fn() -> bool, terminate = fn()}`, or nil and an error message.
---
--- `handlers.notification(method, params)` receives the server's notifications on the main
--- loop, in the order they arrived, interleaved with the request callbacks.
--- `handlers.on_exit(code, signal)` runs (scheduled) when the bridge exits.
function M.start(cmd, handlers)
  vim.validate({ cmd = { cmd, 'table' }, handlers = { handlers, 'table' } })
  local exited = false
  local dispatchers = {
    notification = function(method, params)
      handlers.notification(method, params)
    end,
    server_request = function(method, _)
      -- The protocol's server never sends requests (protocol.md §1).
      return nil, { code = -32601, message = 'no requests expected: ' .. tostring(method) }
    end,
    on_exit = function(code, signal)
      exited = true
      -- Not scheduled by vim.lsp.rpc on any version: run it on the main loop ourselves.
      vim.schedule(function()
        handlers.on_exit(code, signal)
      end)
    end,
    on_error = function(code, err)
      if handlers.on_error then
        handlers.on_error(code, err)
      end
    end,
  }
  local ok, client
  if vim.fn.has('nvim-0.10') == 1 then
    ok, client = pcall(vim.lsp.rpc.start, cmd, dispatchers)
  else
    local args = {}
    for i = 2, #cmd do
      args[#args + 1] = cmd[i]
    end
    ok, client = pcall(vim.lsp.rpc.start, cmd[1], args, dispatchers)
  end
  if not ok then
    return nil, tostring(client)
  end
  if not client then
    return nil, 'could not start ' .. table.concat(cmd, ' ')
  end
  -- 0.10+ return is_closing/terminate; 0.7-0.9 return {pid, handle, request, notify}.
  local function is_closing()
    if exited then
      return true
    end
    if client.is_closing then
      return client.is_closing()
    end
    return client.handle == nil or client.handle:is_closing()
  end
  local function terminate()
    if client.terminate then
      if not client.is_closing() then
        client.terminate()
      end
    elseif client.handle and not client.handle:is_closing() then
      client.handle:kill(15)
    end
  end
  return {
    request = function(method, params, callback)
      if is_closing() then
        return false
      end
      local sent = client.request(method, params == nil and M.EMPTY or params, function(err, result)
        callback(err, result)
      end)
      return sent and true or false
    end,
    notify = function(method, params)
      if is_closing() then
        return false
      end
      return client.notify(method, params == nil and M.EMPTY or params) and true or false
    end,
    is_closing = is_closing,
    terminate = terminate,
  }
end

return M
