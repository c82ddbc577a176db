--- Keeps a session joined to its room through `codesphere bridge`.
---
--- An attempt starts the bridge, sends `initialize` and `room/join` (protocol.md §2). When a
--- joined connection is lost (the bridge killed, the server stopped or restarted, the network
--- down: the bridge's WebSocket pings notice a dead link) it tries again, 0.5 s after the loss,
--- then waiting twice as long after each failure up to 10 s, for as long as it takes, until
--- `stop()`. Every attempt initializes with the same clientId, so that the server recognises
--- the edits the session resends (§6.5).
local rpc = require('codesphere.rpc')

local M = {}

local VERSION = '0.1.0'

--- Refusals that trying again cannot fix: RoomNotFound, Forbidden, Unauthorized. They are also
--- how a reconnect learns that access was revoked or the room deleted (close codes 4003, 4004):
--- the bridge does not pass the close code on, but the next join is refused.
local FINAL = { [1002] = true, [1005] = true, [1007] = true }

local INITIAL_DELAY_MS = 500
local MAX_DELAY_MS = 10000
local ATTEMPT_TIMEOUT_MS = 20000

--- The wait before attempt number `failures` (1, 2, …): 0.5 s doubling up to 10 s, ±20% so that
--- everyone cut off by a server restart does not come back in the same instant.
function M.backoff(failures)
  local base = math.min(MAX_DELAY_MS, INITIAL_DELAY_MS * 2 ^ math.max(0, failures - 1))
  return math.floor(base * (0.8 + 0.4 * math.random()))
end

--- Shows `msg` to the user, marked as CodeSphere's (INFO unless `level` says otherwise).
function M.notify(msg, level)
  vim.notify('CodeSphere: ' .. msg, level or vim.log.levels.INFO)
end

function M.errmsg(err)
  if type(err) == 'table' then
    local code = err.code and (' (' .. tostring(err.code) .. ')') or ''
    return tostring(err.message or vim.inspect(err)) .. code
  end
  return tostring(err)
end
local errmsg = M.errmsg

--- "exit code 1" or "signal 9".
function M.exit_reason(code, signal)
  if signal and signal ~= 0 then
    return 'signal ' .. tostring(signal)
  end
  return 'exit code ' .. tostring(code)
end

--- One attempt. `opts`: {cmd, ws_url, client_id, name, token, room_id}. `events.notification
--- (conn, method, params)` and `events.on_exit(conn, code, signal)` report what happens on the
--- connection afterwards, with `conn` so that the caller can tell an old one from its current.
---
--- `done(err, conn, init, joined)` runs once, on the main loop; `err` is nil or
--- `{message, code, final}`, and on an error the bridge is ended. Bounded: an attempt that has
--- not joined within ATTEMPT_TIMEOUT_MS fails. Returns a function that cancels the attempt.
local function attempt(opts, events, done)
  local finished = false
  local conn, timer
  local function finish(err, ...)
    if finished then
      return
    end
    finished = true
    if timer then
      timer:stop()
      timer:close()
    end
    if err and conn then
      conn.terminate()
    end
    done(err, ...)
  end

  local cmd = vim.deepcopy(opts.cmd)
  cmd[#cmd + 1] = opts.ws_url
  local start_err
  conn, start_err = rpc.start(cmd, {
    notification = function(method, params)
      events.notification(conn, method, params)
    end,
    on_exit = function(code, signal)
      if finished then
        events.on_exit(conn, code, signal)
      else
        finish({ message = 'the bridge ended before joining (' .. M.exit_reason(code, signal) .. ')' })
      end
    end,
  })
  if not conn then
    vim.schedule(function()
      finish({ message = 'could not start the bridge: ' .. tostring(start_err) })
    end)
    return function() end
  end

  timer = vim.loop.new_timer()
  timer:start(ATTEMPT_TIMEOUT_MS, 0, vim.schedule_wrap(function()
    finish({ message = 'no answer from the server in time' })
  end))

  conn.request('initialize', {
    clientInfo = { name = 'codesphere.nvim', version = VERSION },
    capabilities = { general = { positionEncodings = { 'utf-8' } } },
    clientId = opts.client_id,
    displayName = opts.name,
    token = opts.token,
  }, function(ierr, init)
    if ierr then
      return finish({ message = 'initialize failed: ' .. errmsg(ierr), code = ierr.code, final = FINAL[ierr.code] })
    end
    local encoding = init.capabilities and init.capabilities.positionEncoding
    if encoding ~= 'utf-8' then
      return finish({
        message = 'the server chose the position encoding ' .. tostring(encoding) .. ', not utf-8',
        final = true,
      })
    end
    conn.notify('initialized', rpc.EMPTY)
    local params = rpc.EMPTY
    if opts.room_id then
      params = { roomId = opts.room_id }
    end
    conn.request('room/join', params, function(jerr, joined)
      if jerr then
        return finish({ message = 'room/join failed: ' .. errmsg(jerr), code = jerr.code, final = FINAL[jerr.code] })
      end
      finish(nil, conn, init, joined)
    end)
  end)
  return function()
    finish({ message = 'cancelled' })
  end
end

local Connection = {}
Connection.__index = Connection

--- `opts`: {cmd, ws_url, name, token, room_id, client_id}. `handlers` (all run on the main
--- loop): `joined(conn, init, joined, first)`, `lost(reason)`, `notification(method, params)`,
--- `failed(err, first)` (a first join failed, or a reconnect was refused for good).
function M.new(opts, handlers)
  return setmetatable({
    opts = opts,
    handlers = handlers,
    conn = nil, -- the joined connection
    joined_once = false,
    stopped = false,
    failures = 0, -- attempts since the connection was lost
    cancel_attempt = nil,
    retry_timer = nil,
    retry_at = nil, -- vim.loop.now() of the next attempt
  }, Connection)
end

--- The first attempt; a failure is reported, never retried (the link or the server is wrong).
function Connection:start()
  self:_attempt()
end

function Connection:_attempt()
  local first = not self.joined_once
  self.cancel_attempt = attempt(self.opts, {
    notification = function(conn, method, params)
      -- An old connection may still deliver what it had read: it is no longer ours.
      if conn == self.conn and not self.stopped then
        self.handlers.notification(method, params)
      end
    end,
    on_exit = function(conn, code, signal)
      self:_on_exit(conn, M.exit_reason(code, signal))
    end,
  }, function(err, conn, init, joined)
    self.cancel_attempt = nil
    if self.stopped then
      if conn then
        conn.terminate()
      end
      return
    end
    if err then
      if first or err.final then
        self.stopped = true
        return self.handlers.failed(err, first)
      end
      return self:_schedule_retry()
    end
    self.conn = conn
    self.joined_once = true
    self.failures = 0
    self.opts.client_id = init.clientId or self.opts.client_id
    if joined.memberToken then
      -- Joining with the invite again would use it again: reconnect as the member it made.
      self.opts.token = joined.memberToken
    end
    if joined.room and joined.room.id then
      self.opts.room_id = joined.room.id
    end
    self.handlers.joined(conn, init, joined, first)
  end)
end

function Connection:_on_exit(conn, reason)
  if conn ~= self.conn then
    return -- an attempt that failed, or a connection already replaced
  end
  self.conn = nil
  if self.stopped then
    return
  end
  self.handlers.lost(reason)
  self:_schedule_retry()
end

function Connection:_schedule_retry()
  self:_cancel_retry()
  self.failures = self.failures + 1
  local delay = M.backoff(self.failures)
  self.retry_at = vim.loop.now() + delay
  local timer = vim.loop.new_timer()
  self.retry_timer = timer
  timer:start(delay, 0, vim.schedule_wrap(function()
    if self.retry_timer ~= timer then
      return
    end
    self:_cancel_retry()
    if not self.stopped then
      self:_attempt()
    end
  end))
end

function Connection:_cancel_retry()
  local timer = self.retry_timer
  self.retry_timer = nil
  self.retry_at = nil
  if timer then
    timer:stop()
    timer:close()
  end
end

--- Milliseconds until the next attempt, or nil (joined, or an attempt is under way).
function Connection:retry_in_ms()
  if not self.retry_at then
    return nil
  end
  return math.max(0, self.retry_at - vim.loop.now())
end

--- No more attempts; an attempt under way is abandoned. The joined connection (if any) stays
--- for the caller to say goodbye on; `terminate()` ends it.
function Connection:stop()
  self.stopped = true
  self:_cancel_retry()
  if self.cancel_attempt then
    self.cancel_attempt()
  end
end

--- Ends the joined connection at once (after `stop()`).
function Connection:terminate()
  if self.conn then
    self.conn.terminate()
  end
end

return M
