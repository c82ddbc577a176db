--- The room's chat (protocol.md §8) in a split: a prompt buffer whose last line is where one
--- types (`i`, then <CR> sends), with the messages above it as "HH:MM Name: text".
---
--- Messages are kept by id, so the history (fetched when the window opens), the live
--- `chat/message` notifications and our own send's answer never show one twice. Names and
--- text are shown as text: control characters are replaced, a newline starts an indented line.
local api = vim.api

local M = {}

local PROMPT = '> '
local PAGE = 50
local MAX_CHARS = 8192 -- protocol.md §8
local ns = api.nvim_create_namespace('codesphere_chat')

local Chat = {}
Chat.__index = Chat

--- The chat of the current session (the prompt buffer's callback sends through it).
local current = nil
--- The chat buffer; it outlives sessions (a new join shows the new room's chat in it).
local chat_buf = nil

local notify = require('codesphere.connection').notify
local errmsg = require('codesphere.connection').errmsg

--- Text for a buffer line: no control characters but tabs.
local function clean(s)
  return (tostring(s):gsub('[%z\1-\8\11-\31\127]', ' '))
end

--- The lines of one message, and the byte ranges of its time and name on the first.
local function format(msg)
  local time = os.date('%H:%M', math.floor((tonumber(msg.timestamp) or 0) / 1000))
  local name = clean(msg.name or '?')
  local text = tostring(msg.text or ''):gsub('\r\n', '\n')
  local parts = vim.split(text, '\n', { plain = true })
  local lines = { time .. ' ' .. name .. ': ' .. clean(parts[1]) }
  for i = 2, #parts do
    lines[#lines + 1] = '      ' .. clean(parts[i])
  end
  return lines, { time = { 0, #time }, name = { #time + 1, #time + 1 + #name } }
end

function M.attach(session, opts)
  local self = setmetatable({
    session = session,
    opts = opts or {},
    messages = {}, -- id -> ChatMessage
    shown_seq = 0, -- the highest seq drawn at the end of the buffer
    history_loaded = false,
  }, Chat)
  current = self
  session:listen(function(event, a, b)
    if current ~= self then
      return
    end
    if event == 'notification' and a == 'chat/message' and type(b.message) == 'table' then
      self:_add({ b.message })
      self:_notify_unseen(b.message)
    elseif event == 'state' and a == 'joined' and self.history_loaded then
      self:load_history() -- after a reconnect: what was said meanwhile
    end
  end)
  if chat_buf and api.nvim_buf_is_valid(chat_buf) then
    self:_render() -- another room now: its chat replaces the old one
  end
  return self
end

--- A message of someone else while the chat is not on screen: say so (chat.notify).
function Chat:_notify_unseen(msg)
  local me = self.session.you and self.session.you.memberId
  if self.opts.notify == false or msg.memberId == me or M.window() then
    return
  end
  notify(clean(msg.name or '?') .. ': ' .. clean(msg.text or ''))
end

function Chat:_sorted()
  local list = {}
  for _, m in pairs(self.messages) do
    list[#list + 1] = m
  end
  table.sort(list, function(a, b)
    return (tonumber(a.seq) or 0) < (tonumber(b.seq) or 0)
  end)
  return list
end

function Chat:_add(messages)
  local fresh = {}
  for _, m in ipairs(messages) do
    if m.id ~= nil and not self.messages[m.id] then
      self.messages[m.id] = m
      fresh[#fresh + 1] = m
    end
  end
  if #fresh == 0 or not (chat_buf and api.nvim_buf_is_valid(chat_buf)) then
    return
  end
  table.sort(fresh, function(a, b)
    return (tonumber(a.seq) or 0) < (tonumber(b.seq) or 0)
  end)
  if (tonumber(fresh[1].seq) or 0) > self.shown_seq then
    self:_append(fresh) -- the usual case: new messages at the end
  else
    self:_render()
  end
end

--- Inserts `messages` above the prompt line (the buffer's last).
function Chat:_append(messages)
  local buf = chat_buf
  local at = api.nvim_buf_line_count(buf) - 1
  local lines, marks = {}, {}
  for _, m in ipairs(messages) do
    local mlines, ranges = format(m)
    marks[#marks + 1] = { at + #lines, ranges }
    vim.list_extend(lines, mlines)
    self.shown_seq = math.max(self.shown_seq, tonumber(m.seq) or 0)
  end
  api.nvim_buf_set_lines(buf, at, at, false, lines)
  for _, mark in ipairs(marks) do
    local row, ranges = mark[1], mark[2]
    api.nvim_buf_set_extmark(buf, ns, row, ranges.time[1],
      { end_row = row, end_col = ranges.time[2], hl_group = 'CodeSphereChatTime' })
    api.nvim_buf_set_extmark(buf, ns, row, ranges.name[1],
      { end_row = row, end_col = ranges.name[2], hl_group = 'CodeSphereChatName' })
  end
  -- Keep the newest in view in chat windows the user is not in.
  local count = api.nvim_buf_line_count(buf)
  for _, win in ipairs(api.nvim_list_wins()) do
    if api.nvim_win_get_buf(win) == buf and win ~= api.nvim_get_current_win() then
      api.nvim_win_set_cursor(win, { count, 0 })
    end
  end
end

--- Draws every message again, above the prompt line (which keeps what is being typed).
function Chat:_render()
  local buf = chat_buf
  api.nvim_buf_clear_namespace(buf, ns, 0, -1)
  api.nvim_buf_set_lines(buf, 0, api.nvim_buf_line_count(buf) - 1, false, {})
  self.shown_seq = 0
  self:_append(self:_sorted())
end

--- Fetches the newest messages (chat/history) into the chat.
function Chat:load_history(done)
  done = done or function() end
  local session = self.session
  if session.state ~= 'joined' then
    return done('not in a room')
  end
  session.conn.request('chat/history', { limit = PAGE }, function(err, result)
    if err then
      return done(errmsg(err))
    end
    self.history_loaded = true
    self:_add(result.messages or {})
    done(nil)
  end)
end

--- Sends `text`; `done(err)`.
function Chat:send(text, done)
  done = done or function() end
  local session = self.session
  if session.state ~= 'joined' then
    return done('not in a room')
  end
  if vim.trim(text) == '' then
    return done('an empty message is not sent')
  end
  if vim.fn.strchars(text) > MAX_CHARS then
    return done('a message has at most ' .. MAX_CHARS .. ' characters')
  end
  session.conn.request('chat/send', { text = text }, function(err, result)
    if err then
      return done(errmsg(err))
    end
    if type(result) == 'table' and type(result.message) == 'table' then
      self:_add({ result.message })
    end
    done(nil)
  end)
end

--- The prompt line's <CR>: Neovim has already started a new prompt line below the typed one.
local function on_submit(text)
  local buf = chat_buf
  local count = api.nvim_buf_line_count(buf)
  if count >= 2 and api.nvim_buf_get_lines(buf, count - 2, count - 1, true)[1] == PROMPT .. text then
    -- The typed line goes; the message comes back from the server in its place.
    api.nvim_buf_set_lines(buf, count - 2, count - 1, false, {})
  end
  if vim.trim(text) == '' then
    return
  end
  if not current then
    return notify('not in a room', vim.log.levels.ERROR)
  end
  current:send(text, function(err)
    if err then
      notify('not sent: ' .. err, vim.log.levels.ERROR)
      -- Kept on the prompt line, to send again.
      if api.nvim_buf_is_valid(buf) then
        local last = api.nvim_buf_line_count(buf)
        local line = api.nvim_buf_get_lines(buf, last - 1, last, true)[1]
        if line == PROMPT or line == '' then
          api.nvim_buf_set_lines(buf, last - 1, last, false, { PROMPT .. text })
        end
      end
    end
  end)
end

local function make_buffer()
  local buf = api.nvim_create_buf(false, true)
  api.nvim_buf_set_name(buf, 'codesphere-chat://chat')
  local bo = vim.bo[buf]
  bo.buftype = 'prompt'
  bo.bufhidden = 'hide'
  bo.swapfile = false
  bo.filetype = 'codesphere_chat'
  vim.fn.prompt_setprompt(buf, PROMPT)
  vim.fn.prompt_setcallback(buf, on_submit)
  vim.keymap.set('n', 'q', '<Cmd>close<CR>', { buffer = buf, desc = 'CodeSphere: close the chat' })
  return buf
end

--- The chat's window in the current tab page, or nil.
function M.window()
  if not (chat_buf and api.nvim_buf_is_valid(chat_buf)) then
    return nil
  end
  for _, win in ipairs(api.nvim_tabpage_list_wins(0)) do
    if api.nvim_win_get_buf(win) == chat_buf then
      return win
    end
  end
  return nil
end

--- Opens (or goes to) the chat window and shows the history; `done(err, buf)`.
function Chat:open(done)
  done = done or function() end
  local fresh = not (chat_buf and api.nvim_buf_is_valid(chat_buf))
  if fresh then
    chat_buf = make_buffer()
  end
  local win = M.window()
  if win then
    api.nvim_set_current_win(win)
  else
    vim.cmd('botright ' .. math.max(1, tonumber(self.opts.height) or 12) .. 'split')
    win = api.nvim_get_current_win()
    api.nvim_win_set_buf(win, chat_buf)
    local wo = vim.wo[win]
    wo.number = false
    wo.relativenumber = false
    wo.wrap = true
    wo.winfixheight = true
  end
  if fresh then
    self:_render() -- what arrived before the window was first opened
  end
  api.nvim_win_set_cursor(win, { api.nvim_buf_line_count(chat_buf), 0 })
  if self.history_loaded then
    return done(nil, chat_buf)
  end
  self:load_history(function(err)
    if err then
      notify('chat history: ' .. err, vim.log.levels.WARN)
    end
    done(err, chat_buf)
  end)
end

--- The chat buffer's message lines (for scripts and tests).
function M.lines()
  if not (chat_buf and api.nvim_buf_is_valid(chat_buf)) then
    return {}
  end
  local lines = api.nvim_buf_get_lines(chat_buf, 0, -1, true)
  lines[#lines] = nil -- the prompt line
  return lines
end

return M
