--- Follow mode (protocol.md §7, client-side): show the file the followed member looks at, in
--- the window where following started, with the cursor where theirs is, whenever their
--- presence changes. It stops on the user's own keys in that window, when the member leaves,
--- and with the connection.
---
--- The server sends a member's presence only to connections that have that file open. To see
--- where the followed member goes next, the room's other files are opened on the connection
--- without a buffer ("watched": their edits are ignored) while following, and closed again
--- when it stops, as the web page does. Rooms with very many files are not watched this way:
--- following then works within the files open here.
local api = vim.api
local presence = require('codesphere.presence')

local M = {}

--- Above this many files, following does not open them all in the background.
local WATCH_LIMIT = 200

local Follow = {}
Follow.__index = Follow

--- The follower of the current session (the one on_key stops).
local current = nil

local notify = require('codesphere.connection').notify

-- Keys that are not the user acting in the window: events Neovim passes as keys, and the
-- scroll wheel (which only looks around, as in the web page).
local IGNORED = {}
for _, name in ipairs({ '<FocusGained>', '<FocusLost>', '<Ignore>', '<CursorHold>', '<MouseMove>',
  '<ScrollWheelUp>', '<ScrollWheelDown>', '<ScrollWheelLeft>', '<ScrollWheelRight>' }) do
  local key = api.nvim_replace_termcodes(name, true, true, true)
  if key ~= name then
    IGNORED[key] = true
  end
end

local on_key_ns = api.nvim_create_namespace('codesphere_follow')

local function on_key(key)
  local self = current
  if not self or not self.target or IGNORED[key] then
    return
  end
  if api.nvim_get_current_win() ~= self.win then
    return -- typing in the chat or another window does not take over
  end
  local mode = api.nvim_get_mode().mode
  if mode:sub(1, 1) == 'c' or (mode == 'n' and key == ':') then
    return -- running a command (:CodeSphereChat …) is not moving in the document
  end
  -- on_key runs in the middle of reading a key: stop outside of it.
  vim.schedule(function()
    if current == self and self.target then
      self:stop('stopped following ' .. self:target_name())
    end
  end)
end

function M.attach(session)
  local self = setmetatable({
    session = session,
    target = nil, -- the followed memberId
    win = nil, -- the window that shows where they are
    watched = {}, -- path -> true: opened here for following only
    waiting = nil, -- their newest presence not shown yet
    busy = false,
  }, Follow)
  if current then
    current:stop()
  end
  current = self
  vim.on_key(on_key, on_key_ns)
  session:listen(function(event, a, b)
    if current == self then
      self:_on_event(event, a, b)
    end
  end)
  return self
end

function Follow:_on_event(event, a, b)
  if not self.target then
    return
  end
  local session = self.session
  if event == 'notification' then
    if a == 'presence/didChange' and b.memberId == self.target then
      self:_show(b)
    elseif a == 'room/memberLeft' and b.memberId == self.target then
      self:stop(self:target_name() .. ' left; stopped following')
    elseif a == 'workspace/didCreateFile' then
      self:_watch({ b.path })
    elseif a == 'workspace/didRenameFile' and self.watched[b.path] then
      self.watched[b.path] = nil
      self.watched[b.newPath] = true
    elseif a == 'workspace/didDeleteFile' then
      self.watched[b.path] = nil
    end
  elseif event == 'closed' then
    -- Its buffer was closed: keep hearing about that file while following.
    if session.state == 'joined' and not session.leaving then
      self:_watch({ a })
    end
  elseif event == 'state' and a == 'closed' then
    self:stop()
  elseif event == 'state' and a == 'joined' then
    -- After a reconnect the new connection has none of the watched files open.
    local paths = vim.tbl_keys(self.watched)
    self.watched = {}
    self:_watch(paths)
  end
end

--- The online members one may follow: everyone else.
function Follow:candidates()
  local me = self.session.you and self.session.you.memberId
  local out = {}
  for _, m in ipairs(self.session:online_members()) do
    if m.memberId ~= me then
      out[#out + 1] = m
    end
  end
  return out
end

--- The member `who` names: a name (exact, else ignoring case) or a memberId.
function Follow:find(who)
  local members = self:candidates()
  for _, pass in ipairs({
    function(m)
      return m.name == who
    end,
    function(m)
      return m.memberId == who
    end,
    function(m)
      return type(m.name) == 'string' and m.name:lower() == who:lower()
    end,
  }) do
    for _, m in ipairs(members) do
      if pass(m) then
        return m
      end
    end
  end
  return nil
end

function Follow:target_name()
  local m = self.target and self.session.members[self.target]
  local p = self.target and self.session.presence[self.target]
  return (m and m.name) or (p and p.name) or 'someone'
end

--- Follows the member `who` names in the current window; returns nil or an error message.
function Follow:start(who)
  if self.session.state ~= 'joined' then
    return 'not in a room'
  end
  who = vim.trim(who or '')
  local member = self:find(who)
  if not member then
    if self.session.you and (who == self.session.you.name or who == self.session.you.memberId) then
      return 'you cannot follow yourself'
    end
    return 'no other member online is called ' .. who
  end
  self.target = member.memberId
  self.win = api.nvim_get_current_win()
  self.waiting = nil
  local known = self.session.presence[member.memberId]
  if known then
    self:_show(known)
  end
  -- Opening a file brings the presence of everyone in it (§5): that is how we find them.
  local paths = self.session:file_paths()
  if #paths <= WATCH_LIMIT then
    self:_watch(paths)
  end
  self.session:_changed()
  return nil
end

--- Stops following; `message` (optional) tells the user why.
function Follow:stop(message)
  if not self.target then
    return
  end
  self.target = nil
  self.waiting = nil
  local session = self.session
  for path in pairs(self.watched) do
    if not session.docs[path] and session.conn and session.state == 'joined' then
      session.conn.notify('textDocument/didClose', { path = path })
    end
  end
  self.watched = {}
  if message then
    notify(message)
  end
  session:_changed()
end

function Follow:_watch(paths)
  local session = self.session
  for _, path in ipairs(paths) do
    if not session.docs[path] and not self.watched[path] then
      self.watched[path] = true
      session.conn.request('textDocument/didOpen', { path = path }, function(err)
        if err then
          self.watched[path] = nil
        elseif not self.target and not session.docs[path] and session.state == 'joined' then
          session.conn.notify('textDocument/didClose', { path = path }) -- stopped meanwhile
        end
      end)
    end
  end
end

function Follow:_show(p)
  self.waiting = p
  self.session:_changed() -- the statusline says where they are
  if not self.busy then
    self:_drain()
  end
end

--- Shows the newest waiting presence; one file is opened at a time.
function Follow:_drain()
  local p = self.waiting
  self.waiting = nil
  if not p or not self.target or p.memberId ~= self.target then
    return
  end
  if type(p.path) ~= 'string' then
    return -- they look at no document: stay here
  end
  self.busy = true
  self.session:open(p.path, function(err, buf)
    self.busy = false
    if err then
      notify('cannot follow into ' .. p.path .. ': ' .. tostring(err), vim.log.levels.WARN)
    elseif self.target == p.memberId and not self.waiting then
      self:_place(buf, p)
    end
    self:_drain()
  end)
end

function Follow:_place(buf, p)
  if not api.nvim_buf_is_valid(buf) then
    return
  end
  if not (self.win and api.nvim_win_is_valid(self.win)) then
    self.win = api.nvim_get_current_win()
  end
  if api.nvim_win_get_buf(self.win) ~= buf then
    api.nvim_win_set_buf(self.win, buf)
  end
  local sel = type(p.selections) == 'table' and p.selections[1]
  if sel then
    local line, col = presence.clamp(buf, sel.active)
    api.nvim_win_set_cursor(self.win, { line + 1, col })
  end
end

--- For the statusline: "following Ada", or nil.
function Follow:status()
  if not self.target then
    return nil
  end
  local p = self.session.presence[self.target]
  if p and p.path then
    return 'following ' .. self:target_name()
  end
  return 'following ' .. self:target_name() .. ' (no file)'
end

return M
