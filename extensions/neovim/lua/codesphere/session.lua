--- A session in a CodeSphere room: its connection, documents, members and files.
---
--- A lost connection (the bridge or the server gone) is not the end: the session keeps its
--- documents and their edits, tries again with backoff until it is back or the user leaves,
--- and then resumes every document (protocol.md §6.5) with the same clientId.
local api = vim.api
local buffer = require('codesphere.buffer')
local connection = require('codesphere.connection')
local rpc = require('codesphere.rpc')
local sync = require('codesphere.sync')

local M = {}

local Session = {}
Session.__index = Session

local notify = connection.notify
local errmsg = connection.errmsg

local function random_client_id()
  local hex = {}
  for i = 1, 16 do
    hex[i] = string.format('%x', math.random(0, 15))
  end
  return 'nvim-' .. table.concat(hex)
end

--- Creates a session; `opts`: {cmd, name, ws_url, token, room, undo (bool: `u` undoes only
--- the user's own changes), on_change = fn()}.
function M.new(opts)
  math.randomseed(vim.loop.hrtime() % 2147483647)
  return setmetatable({
    opts = opts,
    state = 'idle', -- idle | connecting | joined | reconnecting | closed
    client_id = random_client_id(),
    room = nil, -- {id, name}
    you = nil, -- Member
    members = {}, -- memberId -> Member
    files = {}, -- path -> {path, revision, eol}
    docs = {}, -- path -> Doc
    presence = {}, -- memberId -> presence/didChange params
    conn = nil, -- the joined rpc connection, nil while offline
    link = nil, -- codesphere.connection: joins, and joins again after a loss
    listeners = {}, -- see Session:listen
  }, Session)
end

--- Features kept in modules of their own (presence, follow, chat) hear about the session
--- through `fn(event, ...)`: 'state' (state), 'notification' (method, params) after the
--- session's own bookkeeping, 'opened' (doc), 'closed' (path) and 'doc' (kind, doc) for
--- sync events. A failing listener is reported and does not stop the others.
function Session:listen(fn)
  self.listeners[#self.listeners + 1] = fn
end

function Session:_emit(event, ...)
  for _, fn in ipairs(self.listeners) do
    local ok, err = pcall(fn, event, ...)
    if not ok then
      notify(event .. ': ' .. tostring(err), vim.log.levels.ERROR)
    end
  end
end

function Session:_changed()
  if self.opts.on_change then
    self.opts.on_change(self)
  end
end

function Session:_set_state(state)
  self.state = state
  self:_emit('state', state)
  self:_changed()
end

--- Starts the bridge, initializes and joins; `done(err)` is called at the end. A first join
--- that fails is not retried (the link or the server is wrong): `done` says why.
function Session:start(done)
  done = done or function() end
  self:_set_state('connecting')
  self.link = connection.new({
    cmd = self.opts.cmd,
    ws_url = self.opts.ws_url,
    client_id = self.client_id,
    name = self.opts.name,
    token = self.opts.token,
    room_id = self.opts.room,
  }, {
    joined = function(conn, init, joined, first)
      self.conn = conn
      self.client_id = init.clientId or self.client_id
      self.limits = init.limits
      self:_take_join(joined)
      self:_set_state('joined')
      if first then
        done(nil)
      else
        self:_resume(conn)
      end
    end,
    lost = function(reason)
      self:_on_lost(reason)
    end,
    notification = function(method, params)
      self:_on_notification(method, params)
    end,
    failed = function(err, first)
      if first then
        self:_set_state('closed')
        return done(err.message)
      end
      notify('cannot rejoin the room: ' .. err.message, vim.log.levels.ERROR)
      self:close()
    end,
  })
  self.link:start()
end

--- After a reconnect: every document resumes (§6.5). Our presence goes again too (§7):
--- codesphere.presence sends it on the 'state' event once a document is resumed.
function Session:_resume(conn)
  local waiting = 1
  local function one_done()
    waiting = waiting - 1
    if waiting == 0 and conn == self.conn then
      notify('reconnected')
      self:_changed()
    end
  end
  for _, doc in pairs(self.docs) do
    waiting = waiting + 1
    doc:resume(conn, one_done)
  end
  one_done()
end

--- The bridge ended (killed, the server gone or restarted, the network down): keep the
--- documents and their edits (new ones are gathered) until the connection is back.
function Session:_on_lost(reason)
  self.conn = nil
  for _, doc in pairs(self.docs) do
    doc:detach()
  end
  self.presence = {}
  self:_set_state('reconnecting')
  notify('the connection closed (bridge ' .. reason .. '); reconnecting', vim.log.levels.WARN)
end

--- Milliseconds until the next reconnect attempt, or nil (connected, or an attempt is on).
function Session:retry_in_ms()
  return self.link and self.link:retry_in_ms() or nil
end

function Session:_take_join(joined)
  self.room = joined.room
  self.you = joined.you
  self.members = {}
  self.presence = {}
  for _, m in ipairs(joined.members or {}) do
    self.members[m.memberId] = m
  end
  if self.you then
    self.members[self.you.memberId] = self.you
  end
  self.files = {}
  for _, f in ipairs(joined.files or {}) do
    self.files[f.path] = f
  end
end

function Session:is_viewer()
  return self.you ~= nil and self.you.role == 'viewer'
end

--- Refreshes the file list with workspace/files; `done(err, paths)`.
function Session:refresh_files(done)
  done = done or function() end
  if self.state ~= 'joined' then
    return done('not in a room')
  end
  self.conn.request('workspace/files', rpc.EMPTY, function(err, result)
    if err then
      return done(errmsg(err))
    end
    self.files = {}
    for _, f in ipairs(result.files or {}) do
      self.files[f.path] = f
    end
    self:_changed()
    done(nil, self:file_paths())
  end)
end

function Session:file_paths()
  local paths = {}
  for path in pairs(self.files) do
    paths[#paths + 1] = path
  end
  table.sort(paths)
  return paths
end

--- The online members, sorted by name.
function Session:online_members()
  local list = {}
  for _, m in pairs(self.members) do
    if m.online ~= false then
      list[#list + 1] = m
    end
  end
  table.sort(list, function(a, b)
    return (a.name or '') < (b.name or '')
  end)
  return list
end

function Session:buffer_name(path)
  return 'codesphere://' .. path
end

--- Opens `path` into its buffer (a new one named codesphere://<path>); `done(err, buf)`.
function Session:open(path, done)
  done = done or function() end
  if self.state ~= 'joined' then
    return done('not in a room')
  end
  local existing = self.docs[path]
  if existing and api.nvim_buf_is_valid(existing.buf) then
    return done(nil, existing.buf)
  end
  self.conn.request('textDocument/didOpen', { path = path }, function(err, result)
    if err then
      return done(errmsg(err))
    end
    if self.state ~= 'joined' then
      return done('left the room')
    end
    local again = self.docs[path]
    if again and api.nvim_buf_is_valid(again.buf) then
      return done(nil, again.buf)
    end
    local buf = self:_make_buffer(path)
    local doc = sync.new({
      buf = buf,
      path = path,
      conn = self.conn,
      readonly = self:is_viewer(),
      history = self.opts.undo,
      on_event = function(kind, d, detail)
        self:_on_doc_event(kind, d, detail)
      end,
    })
    self.docs[path] = doc
    if doc.history then
      buffer.map_undo(buf, function(count, redo)
        local d = self:doc_for_buf(buf) -- none once the buffer no longer syncs
        return d ~= nil and d:undo(count, redo) ~= nil
      end)
    end
    local ok, lerr = pcall(doc.load, doc, result.text, result.revision, result.lastSeq)
    if not ok then
      self.docs[path] = nil
      return done('could not load ' .. path .. ': ' .. tostring(lerr))
    end
    self:_emit('opened', doc)
    self:_changed()
    done(nil, buf)
  end)
end

function Session:_make_buffer(path)
  return buffer.create(self:buffer_name(path), path, {
    on_write = function(buf)
      local doc = self:doc_for_buf(buf)
      local pending = doc and doc:pending() or 0
      if self.state ~= 'joined' then
        notify(path .. ': offline — ' .. pending .. ' edit(s) wait for the connection')
      elseif pending > 0 then
        notify(path .. ' — ' .. pending .. ' edit(s) still in flight')
      else
        notify(path .. ' is saved on the server')
      end
    end,
    on_unload = function(buf)
      local doc = self:doc_for_buf(buf)
      if doc then
        self:_close_doc(doc.path, buf)
      end
    end,
  })
end

function Session:_close_doc(path, buf)
  local doc = self.docs[path]
  if doc and doc.buf == buf then
    doc:close()
    self.docs[path] = nil
    if self.conn and self.state == 'joined' then
      self.conn.notify('textDocument/didClose', { path = path })
    end
    self:_emit('closed', path)
    self:_changed()
  end
end

function Session:doc_for_buf(buf)
  for _, doc in pairs(self.docs) do
    if doc.buf == buf then
      return doc
    end
  end
  return nil
end

function Session:_on_doc_event(kind, doc, detail)
  if kind == 'error' then
    notify(doc.path .. ': ' .. errmsg(detail), vim.log.levels.WARN)
  elseif kind == 'deleted' then
    self:_drop_doc(doc)
    notify(doc.path .. ' is no longer in the room (deleted or renamed while offline); the buffer keeps your text',
      vim.log.levels.WARN)
  elseif kind == 'resynced' then
    if detail and detail.lost and detail.lost > 0 then
      notify(doc.path .. ' was resynchronised; unsent edits were dropped', vim.log.levels.WARN)
    end
  end
  self:_emit('doc', kind, doc)
  self:_changed()
end

function Session:_on_notification(method, params)
  if type(params) ~= 'table' then
    return
  end
  if method == 'textDocument/remoteChange' then
    local doc = self.docs[params.path]
    if doc then
      doc:remote_change(params)
    end
  elseif method == 'presence/didChange' then
    if params.path == nil then
      self.presence[params.memberId] = nil
    else
      self.presence[params.memberId] = params
    end
  elseif method == 'room/memberJoined' then
    local m = params.member
    if m and m.memberId then
      self.members[m.memberId] = m
      self:_changed()
    end
  elseif method == 'room/memberLeft' then
    local m = self.members[params.memberId]
    if m then
      m.online = false
    end
    self.presence[params.memberId] = nil
    self:_changed()
  elseif method == 'workspace/didCreateFile' then
    self.files[params.path] = { path = params.path, revision = params.revision, eol = params.eol }
    self:_changed()
  elseif method == 'workspace/didRenameFile' then
    self.files[params.newPath] = self.files[params.path] or { path = params.newPath }
    self.files[params.newPath].path = params.newPath
    self.files[params.path] = nil
    local doc = self.docs[params.path]
    if doc then
      self.docs[params.path] = nil
      self.docs[params.newPath] = doc
      doc.path = params.newPath
      pcall(api.nvim_buf_set_name, doc.buf, self:buffer_name(params.newPath))
    end
    self:_changed()
  elseif method == 'workspace/didDeleteFile' then
    self.files[params.path] = nil
    local doc = self.docs[params.path]
    if doc then
      self:_drop_doc(doc)
      notify(params.path .. ' was deleted from the room', vim.log.levels.WARN)
    end
    self:_changed()
  end
  self:_emit('notification', method, params)
end

--- Stops syncing a document whose file is gone; its buffer stays, not modifiable.
function Session:_drop_doc(doc)
  doc:close()
  if self.docs[doc.path] == doc then
    self.docs[doc.path] = nil
    self:_emit('closed', doc.path)
  end
  if api.nvim_buf_is_valid(doc.buf) then
    vim.bo[doc.buf].modifiable = false
  end
end

function Session:_detach_all()
  for path, doc in pairs(self.docs) do
    doc:close()
    self.docs[path] = nil
    self:_emit('closed', path)
  end
end

--- room/leave, shutdown, exit; the bridge then ends on its own (or is terminated).
function Session:leave(done)
  done = done or function() end
  self.leaving = true
  if self.link then
    self.link:stop()
  end
  self:_detach_all()
  local conn = self.conn
  if not conn or conn.is_closing() then
    self:_set_state('closed')
    return done()
  end
  local finished = false
  local function finish()
    if finished then
      return
    end
    finished = true
    conn.notify('exit', nil)
    self:_set_state('closed')
    -- The server closes the connection after `exit`, which ends the bridge.
    vim.defer_fn(function()
      conn.terminate()
    end, 2000)
    done()
  end
  local ok = conn.request('room/leave', rpc.EMPTY, function()
    conn.request('shutdown', nil, function()
      finish()
    end)
  end)
  if not ok then
    finish()
  end
  vim.defer_fn(finish, 3000) -- bounded: do not wait for a dead server
end

--- Ends the connection at once.
function Session:close()
  self.leaving = true
  if self.link then
    self.link:stop()
    self.link:terminate()
  end
  self:_detach_all()
  self:_set_state('closed')
end

M.Session = Session
return M
