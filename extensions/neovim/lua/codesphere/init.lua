--- CodeSphere for Neovim: real-time collaboration with a CodeSphere server.
---
--- require("codesphere").setup({
---   cmd = { "codesphere", "bridge" }, -- the stdio bridge; the ws:// URL is appended
---   name = "Ada",                     -- the display name others see (default: $USER)
---   keymaps = false,                  -- true: <leader>cj/co/cu/cl/cc mappings (see :help codesphere)
---   presence = true,                  -- show the others' cursors, send yours
---   colors = true,                    -- each member's own colour (false: the plain groups)
---   chat = { height = 12, notify = true },
---   undo = true,                      -- u and CTRL-R undo/redo only your own changes
--- })
local M = {}

local function default_name()
  local name = vim.env.USER or vim.env.USERNAME or 'nvim'
  if name == '' then
    name = 'nvim'
  end
  return name
end

local defaults = {
  cmd = { 'codesphere', 'bridge' },
  name = nil, -- resolved at use: $USER
  keymaps = false,
  presence = true,
  colors = true,
  chat = { height = 12, notify = true },
  undo = true,
}

M.config = vim.deepcopy(defaults)

--- The current session (codesphere.session), or nil.
M.session = nil

local notify = require('codesphere.connection').notify

--- The default `done` of a command: shows its error, if any.
local function report(err)
  if err then
    notify(err, vim.log.levels.ERROR)
  end
end

local function redraw_status()
  pcall(vim.cmd, 'redrawstatus!')
end

local function set_keymaps(keymaps)
  if not keymaps then
    return
  end
  local maps = {
    j = { ':CodeSphereJoin ', 'CodeSphere: join a room (type the link)' },
    o = { '<Cmd>CodeSphereOpen<CR>', 'CodeSphere: open a file of the room' },
    u = { '<Cmd>CodeSphereUsers<CR>', 'CodeSphere: list members' },
    l = { '<Cmd>CodeSphereLeave<CR>', 'CodeSphere: leave the room' },
    c = { '<Cmd>CodeSphereChat<CR>', 'CodeSphere: open the chat' },
  }
  local prefix = type(keymaps) == 'table' and keymaps.prefix or '<leader>c'
  for key, map in pairs(maps) do
    vim.keymap.set('n', prefix .. key, map[1], { desc = map[2] })
  end
end

--- Configures the plugin; every option is optional (see :help codesphere-setup).
function M.setup(opts)
  opts = opts or {}
  vim.validate({
    cmd = { opts.cmd, 'table', true },
    name = { opts.name, 'string', true },
    presence = { opts.presence, 'boolean', true },
    colors = { opts.colors, 'boolean', true },
    chat = { opts.chat, 'table', true },
    undo = { opts.undo, 'boolean', true },
  })
  M.config = vim.tbl_extend('force', vim.deepcopy(defaults), opts)
  -- Only `chat` is merged key by key: a deep merge would mix two `cmd` lists.
  M.config.chat = vim.tbl_extend('force', vim.deepcopy(defaults.chat), opts.chat or {})
  set_keymaps(M.config.keymaps)
  require('codesphere.highlight').setup(M.config.colors)
end

--- The features of a session, each in a module of its own, listening to it.
local function attach_features(session)
  if M.presence then
    M.presence:detach()
    M.presence = nil
  end
  if M.config.presence then
    M.presence = require('codesphere.presence').attach(session)
  end
  require('codesphere.highlight').setup(M.config.colors)
  M.follower = require('codesphere.follow').attach(session)
  M.chat_panel = require('codesphere.chat').attach(session, M.config.chat)
end

--- Joins the room of `link` (http://host:port/#token=T&room=R). `done(err)` is optional.
function M.join(link, done)
  done = done or report
  local parsed, perr = require('codesphere.link').parse(link)
  if not parsed then
    return done(perr)
  end
  if M.session and M.session.state ~= 'closed' then
    M.session:close()
  end
  local session = require('codesphere.session').new({
    cmd = M.config.cmd,
    name = M.config.name or default_name(),
    ws_url = parsed.ws_url,
    token = parsed.token,
    room = parsed.room,
    undo = M.config.undo,
    on_change = redraw_status,
  })
  M.session = session
  attach_features(session)
  session:start(function(err)
    if err then
      return done(err)
    end
    local role = session.you and session.you.role or '?'
    notify(string.format('joined %s as %s (%d online)', session.room and session.room.name or '?', role,
      #session:online_members()))
    session:refresh_files()
    done(nil)
  end)
end

local function joined_session()
  if M.session and M.session.state == 'joined' then
    return M.session
  end
  return nil
end

--- Opens `path` of the room in a buffer (a picker over the room's files without `path`).
function M.open(path, done)
  done = done or function(err, buf)
    if err then
      notify(err, vim.log.levels.ERROR)
    elseif buf and vim.api.nvim_buf_is_valid(buf) then
      vim.api.nvim_set_current_buf(buf)
    end
  end
  local session = joined_session()
  if not session then
    if M.session and M.session.state == 'reconnecting' then
      return done('offline: reconnecting to the server, try again when connected')
    end
    return done('not in a room (use :CodeSphereJoin {link})')
  end
  if path and path ~= '' then
    return session:open(path, done)
  end
  session:refresh_files(function(err, paths)
    if err then
      return done(err)
    end
    vim.ui.select(paths, { prompt = 'CodeSphere file' }, function(choice)
      if choice then
        session:open(choice, done)
      end
    end)
  end)
end

--- BufReadCmd of codesphere://<path>: (re)loads the document from the server (:edit).
function M.read_cmd(buf, name)
  local path = name:gsub('^codesphere://', '')
  local session = joined_session()
  if not session then
    local why = (M.session and M.session.state == 'reconnecting') and 'offline' or 'not in a room'
    notify(why .. ': cannot load ' .. path, vim.log.levels.WARN)
    return
  end
  local doc = session:doc_for_buf(buf)
  if doc then
    doc:resync()
  else
    session:open(path, function(err)
      if err then
        notify(err, vim.log.levels.ERROR)
      end
    end)
  end
end

local function undo_here(count, redo)
  local doc = M.session and M.session:doc_for_buf(vim.api.nvim_get_current_buf())
  return doc and doc:undo(count or 1, redo) or 0
end

--- Undoes `count` (default 1) of your own changes in the current buffer, as `u` there does;
--- returns how many were undone.
function M.undo(count)
  return undo_here(count, false)
end

--- Redoes `count` (default 1) of your own undone changes in the current buffer (CTRL-R).
function M.redo(count)
  return undo_here(count, true)
end

--- Leaves the room and ends the connection (and stops reconnecting).
function M.leave(done)
  local session = M.session
  if not session or session.state == 'closed' then
    notify('not connected')
    return
  end
  session:leave(function()
    notify('left the room')
    if done then
      done()
    end
  end)
end

--- The lines :CodeSphereUsers shows.
function M.users_lines()
  local session = M.session
  if not session or not session.room then
    return { 'CodeSphere: not in a room' }
  end
  local lines = { string.format('CodeSphere room %s (%s):', session.room.name or '', session.room.id or '') }
  local all = {}
  for _, m in pairs(session.members) do
    all[#all + 1] = m
  end
  table.sort(all, function(a, b)
    if (a.online ~= false) ~= (b.online ~= false) then
      return a.online ~= false
    end
    return (a.name or '') < (b.name or '')
  end)
  for _, m in ipairs(all) do
    local me = session.you and m.memberId == session.you.memberId
    local where = ''
    local p = session.presence[m.memberId]
    if p and p.path then
      where = ' in ' .. p.path
    end
    lines[#lines + 1] = string.format('  %s [%s]%s%s%s', m.name or '?', m.role or '?',
      m.online == false and ' offline' or ' online', me and ' (you)' or '', where)
  end
  return lines
end

function M.users()
  vim.api.nvim_echo({ { table.concat(M.users_lines(), '\n') } }, true, {})
end

--- File paths for :CodeSphereOpen completion (the room's files, kept current by workspace
--- notifications and refreshed with workspace/files).
function M.complete_files(arglead)
  local session = joined_session()
  if not session then
    return {}
  end
  session:refresh_files() -- for the next completion; this one uses what is known now
  local out = {}
  for _, path in ipairs(session:file_paths()) do
    if arglead == nil or arglead == '' or path:sub(1, #arglead) == arglead then
      out[#out + 1] = path
    end
  end
  return out
end

--- Follows the member `who` names (:CodeSphereFollow); returns nil or an error message.
function M.follow(who)
  local session = joined_session()
  local err = 'not in a room (use :CodeSphereJoin {link})'
  if session and M.follower then
    err = M.follower:start(who)
  end
  if err then
    notify(err, vim.log.levels.ERROR)
  else
    notify('following ' .. M.follower:target_name())
  end
  return err
end

function M.unfollow()
  if M.follower and M.follower.target then
    M.follower:stop('stopped following ' .. M.follower:target_name())
  else
    notify('not following anyone')
  end
end

--- Member names for :CodeSphereFollow completion; names may contain spaces, so the whole
--- argument typed so far (not just its last word) is matched.
function M.complete_members(arglead, cmdline)
  if not (joined_session() and M.follower) then
    return {}
  end
  local typed = (cmdline or ''):match('^%s*%S+%s+(.*)$') or arglead or ''
  local out = {}
  for _, m in ipairs(M.follower:candidates()) do
    local name = m.name or m.memberId
    if name:sub(1, #typed) == typed then
      out[#out + 1] = name:sub(#typed - #arglead + 1)
    end
  end
  return out
end

--- :CodeSphereChat: with `text`, sends it; without, opens the chat window.
function M.chat(text, done)
  done = done or report
  if not (joined_session() and M.chat_panel) then
    return done('not in a room (use :CodeSphereJoin {link})')
  end
  if text and text ~= '' then
    M.chat_panel:send(text, done)
  else
    M.chat_panel:open(done)
  end
end

--- :CodeSphereShare: shares `files` (the current buffer when empty) into the room;
--- `done(errors, shared)`.
function M.share(files, done)
  done = done or function(errors, shared)
    for _, err in ipairs(errors) do
      notify(err, vim.log.levels.ERROR)
    end
    if #shared > 0 then
      local paths = {}
      for _, s in ipairs(shared) do
        paths[#paths + 1] = s.path
      end
      notify('shared ' .. table.concat(paths, ', '))
    end
  end
  local session = joined_session()
  if not session then
    return done({ 'not in a room (use :CodeSphereJoin {link})' }, {})
  end
  require('codesphere.share').share(session, files or {}, done)
end

--- A snapshot for scripts and tests.
function M.status()
  local session = M.session
  if not session then
    return { state = 'idle', docs = {} }
  end
  local docs = {}
  for path, doc in pairs(session.docs) do
    docs[path] = {
      buf = doc.buf,
      revision = doc.revision,
      unacked = doc.unacked,
      unsent = #doc.unsent,
      pending = doc:pending(),
      kept = #doc.kept,
      resyncing = doc.resyncing,
      resuming = doc.resuming,
      online = doc.conn ~= nil,
    }
  end
  return {
    state = session.state,
    room = session.room,
    you = session.you,
    client_id = session.client_id,
    online = #session:online_members(),
    files = session:file_paths(),
    docs = docs,
    following = M.follower and M.follower.target or nil,
    presence = M.presence and { sent = M.presence.sent, refused = M.presence.refused } or nil,
    retry_in_ms = session:retry_in_ms(),
  }
end

--- The protocol text of a CodeSphere buffer (lines joined with "\n", plus "\n" with 'eol').
function M.buffer_text(buf)
  local session = M.session
  local doc = session and session:doc_for_buf(buf or vim.api.nvim_get_current_buf())
  return doc and doc:text() or nil
end

--- For 'statusline': "" when not connected, else e.g. "CS demo 3 online 1 unacked" (see :help
--- codesphere-statusline): state, online members, and the current buffer's unacknowledged
--- edits (sent or gathered) when there are any.
function M.statusline()
  local session = M.session
  if not session or session.state == 'idle' then
    return ''
  end
  if session.state == 'connecting' then
    return 'CS connecting'
  end
  if session.state == 'closed' then
    return 'CS offline'
  end
  local parts
  if session.state == 'reconnecting' then
    -- Edits go on while offline: the count says how many wait for the connection.
    parts = { 'CS reconnecting' }
  else
    parts = { 'CS', session.room and session.room.name or '?', #session:online_members() .. ' online' }
    if session:is_viewer() then
      parts[#parts + 1] = 'viewer'
    end
  end
  local following = M.follower and M.follower:status()
  if following then
    parts[#parts + 1] = following
  end
  local doc = session:doc_for_buf(vim.api.nvim_get_current_buf())
  if doc then
    local pending = doc:pending()
    if pending > 0 then
      parts[#parts + 1] = pending .. ' unacked'
    end
  end
  return table.concat(parts, ' ')
end

return M
