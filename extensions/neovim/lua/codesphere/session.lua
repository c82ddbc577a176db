--- One connection to a CodeSphere server: initialize, room/join, documents, members, files.
local api = vim.api
local rpc = require('codesphere.rpc')
local sync = require('codesphere.sync')

local M = {}

local VERSION = '0.1.0'

local Session = {}
Session.__index = Session

local function notify(msg, level)
  vim.notify('CodeSphere: ' .. msg, level or vim.log.levels.INFO)
end

local function errmsg(err)
  if type(err) == 'table' then
    local code = err.code and (' (' .. tostring(err.code) .. ')') or ''
    return tostring(err.message or vim.inspect(err)) .. code
  end
  return tostring(err)
end

local function random_client_id()
  local hex = {}
  for i = 1, 16 do
    hex[i] = string.format('%x', math.random(0, 15))
  end
  return 'nvim-' .. table.concat(hex)
end

--- Creates a session; `opts`: {cmd, name, ws_url, token, room, on_change = fn()}.
function M.new(opts)
  math.randomseed(vim.loop.hrtime() % 2147483647)
  return setmetatable({
    opts = opts,
    state = 'idle', -- idle | connecting | joined | closed
    client_id = random_client_id(),
    room = nil, -- {id, name}
    you = nil, -- Member
    members = {}, -- memberId -> Member
    files = {}, -- path -> {path, revision, eol}
    docs = {}, -- path -> Doc
    presence = {}, -- memberId -> presence/didChange params
    member_token = nil,
    conn = nil,
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

--- Starts the bridge, initializes and joins; `done(err)` is called at the end.
function Session:start(done)
  done = done or function() end
  local cmd = vim.deepcopy(self.opts.cmd)
  cmd[#cmd + 1] = self.opts.ws_url
  local conn, err = rpc.start(cmd, {
    notification = function(method, params)
      self:_on_notification(method, params)
    end,
    on_exit = function(code, signal)
      self:_on_exit(code, signal)
    end,
  })
  if not conn then
    self:_set_state('closed')
    done('could not start the bridge: ' .. tostring(err))
    return
  end
  self.conn = conn
  self:_set_state('connecting')
  conn.request('initialize', {
    clientInfo = { name = 'codesphere.nvim', version = VERSION },
    capabilities = { general = { positionEncodings = { 'utf-8' } } },
    clientId = self.client_id,
    displayName = self.opts.name,
    token = self.opts.token,
  }, function(ierr, result)
    if ierr then
      done('initialize failed: ' .. errmsg(ierr))
      self:close()
      return
    end
    local encoding = result.capabilities and result.capabilities.positionEncoding
    if encoding ~= 'utf-8' then
      done('the server chose the position encoding ' .. tostring(encoding) .. ', not utf-8')
      self:close()
      return
    end
    self.client_id = result.clientId or self.client_id
    self.limits = result.limits
    conn.notify('initialized', rpc.EMPTY)
    local params = rpc.EMPTY
    if self.opts.room then
      params = { roomId = self.opts.room }
    end
    conn.request('room/join', params, function(jerr, joined)
      if jerr then
        done('room/join failed: ' .. errmsg(jerr))
        self:close()
        return
      end
      self:_take_join(joined)
      self:_set_state('joined')
      done(nil)
    end)
  end)
end

function Session:_take_join(joined)
  self.room = joined.room
  self.you = joined.you
  if joined.memberToken then
    self.member_token = joined.memberToken -- for reconnecting (a later increment)
  end
  self.members = {}
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
      on_event = function(kind, d, detail)
        self:_on_doc_event(kind, d, detail)
      end,
    })
    self.docs[path] = doc
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
  local name = self:buffer_name(path)
  local buf = vim.fn.bufnr('^' .. vim.fn.escape(name, '\\^$.*~[]') .. '$')
  if buf == -1 or not api.nvim_buf_is_valid(buf) then
    buf = api.nvim_create_buf(true, false)
    api.nvim_buf_set_name(buf, name)
  end
  local bo = vim.bo[buf]
  bo.buftype = 'acwrite'
  bo.swapfile = false
  bo.bufhidden = 'hide'
  local group = api.nvim_create_augroup('codesphere_buffer_' .. buf, { clear = true })
  api.nvim_create_autocmd('BufWriteCmd', {
    group = group,
    buffer = buf,
    callback = function()
      -- Every acknowledged edit is already durable on the server (§6.5).
      vim.bo[buf].modified = false
      local doc = self:doc_for_buf(buf)
      local pending = doc and doc:pending() or 0
      notify(path .. (pending > 0 and (' — ' .. pending .. ' edit(s) still in flight') or ' is saved on the server'))
    end,
  })
  -- Unloading (:bdelete, :bwipeout) ends the sync: the next :CodeSphereOpen opens it afresh.
  api.nvim_create_autocmd({ 'BufUnload', 'BufWipeout' }, {
    group = group,
    buffer = buf,
    callback = function()
      local doc = self:doc_for_buf(buf)
      if doc then
        self:_close_doc(doc.path, buf)
      end
    end,
  })
  -- Filetype from the path (vim.filetype.match's signature changed in 0.8).
  local ok, ft = pcall(vim.filetype.match, { filename = path, buf = buf })
  if not ok or type(ft) ~= 'string' then
    ok, ft = pcall(vim.filetype.match, path, buf)
  end
  if ok and type(ft) == 'string' and ft ~= '' then
    bo.filetype = ft
  end
  return buf
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
      doc:close()
      self.docs[params.path] = nil
      if api.nvim_buf_is_valid(doc.buf) then
        vim.bo[doc.buf].modifiable = false
      end
      notify(params.path .. ' was deleted from the room', vim.log.levels.WARN)
    end
    self:_changed()
  end
  self:_emit('notification', method, params)
end

function Session:_detach_all()
  for path, doc in pairs(self.docs) do
    doc:close()
    self.docs[path] = nil
    self:_emit('closed', path)
  end
end

function Session:_on_exit(code, _)
  local was = self.state
  self:_detach_all()
  self:_set_state('closed')
  if was == 'joined' and not self.leaving then
    notify('the connection closed (bridge exit code ' .. tostring(code) .. ')', vim.log.levels.WARN)
  end
end

--- room/leave, shutdown, exit; the bridge then ends on its own (or is terminated).
function Session:leave(done)
  done = done or function() end
  self.leaving = true
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
  self:_detach_all()
  if self.conn then
    self.conn.terminate()
  end
  self:_set_state('closed')
end

M.Session = Session
return M
