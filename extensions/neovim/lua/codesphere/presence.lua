--- Presence (protocol.md §7): the other members' cursors and selections in CodeSphere buffers,
--- and our own cursor and selection sent with `presence/update`.
---
--- Others: each member has a namespace of its own, so showing it again or hiding it is one
--- nvim_buf_clear_namespace. Positions come at the server's head revision, which may be a
--- little ahead of or behind the buffer: they are clamped to the buffer and shown
--- approximately; extmarks then move with later edits by themselves.
---
--- Ours: sent at most every 50 ms (the server passes on 20 a second anyway). The positions
--- must refer to the text with every didChange *sent* (§7): while keystrokes are gathered
--- but not sent yet (one edit in flight), the buffer is ahead of that, so the update waits
--- until the document has sent them.
local api = vim.api
local highlight = require('codesphere.highlight')

local M = {}

local INTERVAL_MS = 50

local Presence = {}
Presence.__index = Presence

local function now_ms()
  return vim.loop.hrtime() / 1e6
end

local function is_continuation(s, i)
  local b = s:byte(i)
  return b ~= nil and b >= 0x80 and b < 0xC0
end

--- Byte length of the character starting at byte column `col` (0-based) of `s`.
local function char_len(s, col)
  local n = 1
  while is_continuation(s, col + n + 1) do
    n = n + 1
  end
  return n
end

M.char_len = char_len

--- (line, col) of position `p` clamped into `buf`, on a character boundary.
local function clamp(buf, p)
  local count = api.nvim_buf_line_count(buf)
  local line = tonumber(p and p.line) or 0
  local col = tonumber(p and p.character) or 0
  if line >= count then -- after the final newline, or past what we have yet: the end
    line, col = count - 1, math.huge
  end
  line = math.max(0, line)
  local text = api.nvim_buf_get_lines(buf, line, line + 1, true)[1]
  col = math.max(0, math.min(col, #text))
  while col > 0 and is_continuation(text, col + 1) do
    col = col - 1
  end
  return line, col, text
end

M.clamp = clamp

--- Names are shown as text: no control characters (a newline would break the label).
local function clean(name)
  return (tostring(name):gsub('%c', ' '))
end

local function namespace(member_id)
  return api.nvim_create_namespace('codesphere_presence_' .. member_id)
end

--- Attaches presence to `session`; returns the Presence (see :detach()).
function M.attach(session)
  local self = setmetatable({
    session = session,
    shown = {}, -- memberId -> {buf, path}: where its marks are
    last_key = 'null', -- what we last sent (the server starts with no presence of ours)
    last_path = nil,
    last_sent_at = 0,
    timer = false,
    detached = false,
    sent = 0, -- presence/update requests, and how many the server refused (for status())
    refused = 0,
  }, Presence)
  session:listen(function(event, ...)
    if not self.detached then
      self:_on_event(event, ...)
    end
  end)
  local group = api.nvim_create_augroup('codesphere_presence', { clear = true })
  self.group = group
  api.nvim_create_autocmd({ 'CursorMoved', 'CursorMovedI', 'ModeChanged', 'BufEnter', 'WinEnter' }, {
    group = group,
    callback = function()
      self:schedule()
    end,
  })
  return self
end

function Presence:detach()
  self.detached = true
  pcall(api.nvim_del_augroup_by_id, self.group)
  self:hide_all()
end

function Presence:_on_event(event, a, b)
  local session = self.session
  if event == 'notification' then
    if a == 'presence/didChange' then
      self:show(b)
    elseif a == 'room/memberLeft' then
      self:hide(b.memberId)
    elseif a == 'workspace/didDeleteFile' then
      self:_hide_path(b.path)
    end
  elseif event == 'opened' then
    -- What we already know of this document (the server sends it again after didOpen).
    for _, p in pairs(session.presence) do
      if p.path == a.path then
        self:show(p)
      end
    end
    self:schedule()
  elseif event == 'closed' then
    self:_hide_path(a)
  elseif event == 'doc' then
    if self.waiting == b then
      self:schedule() -- gathered keystrokes went out: a waiting update can follow
    end
  elseif event == 'state' then
    if a == 'joined' then
      self.last_key = 'null' -- a new connection: the server knows nothing of ours
      self:schedule()
    elseif a == 'closed' or a == 'reconnecting' then
      -- Offline, the others' cursors would only grow stale; after the reconnect the server
      -- sends them again as each document is resumed.
      self:hide_all()
    end
  end
end

-- Others --------------------------------------------------------------------------------------

function Presence:hide(member_id)
  local where = self.shown[member_id]
  if where then
    self.shown[member_id] = nil
    if api.nvim_buf_is_valid(where.buf) then
      api.nvim_buf_clear_namespace(where.buf, namespace(member_id), 0, -1)
    end
  end
end

function Presence:_hide_path(path)
  for member_id, where in pairs(self.shown) do
    if where.path == path then
      self:hide(member_id)
    end
  end
end

function Presence:hide_all()
  for member_id in pairs(self.shown) do
    self:hide(member_id)
  end
end

--- Draws a `presence/didChange` (or hides the member for `path: null`).
function Presence:show(p)
  local session = self.session
  if type(p) ~= 'table' or type(p.memberId) ~= 'string' then
    return
  end
  if session.you and p.memberId == session.you.memberId then
    return -- ourselves, from another connection
  end
  self:hide(p.memberId)
  local doc = type(p.path) == 'string' and session.docs[p.path]
  if not doc or type(p.selections) ~= 'table' or #p.selections == 0 then
    return
  end
  local buf = doc.buf
  if not api.nvim_buf_is_loaded(buf) then
    return
  end
  local member = session.members[p.memberId] or {}
  local groups = highlight.groups(member.color or p.color)
  local label = ' ' .. clean(member.name or p.name or '?') .. ' '
  local ns = namespace(p.memberId)
  for i, sel in ipairs(p.selections) do
    local aline, acol = clamp(buf, sel.anchor)
    local cline, ccol, ctext = clamp(buf, sel.active)
    if aline ~= cline or acol ~= ccol then
      local sl, sc, el, ec = aline, acol, cline, ccol
      if cline < aline or (cline == aline and ccol < acol) then
        sl, sc, el, ec = cline, ccol, aline, acol
      end
      api.nvim_buf_set_extmark(buf, ns, sl, sc, { end_row = el, end_col = ec, hl_group = groups.selection })
    end
    -- The caret: the character at the cursor, or a blank drawn over the end of the line.
    if ccol < #ctext then
      api.nvim_buf_set_extmark(buf, ns, cline, ccol, {
        end_row = cline,
        end_col = ccol + char_len(ctext, ccol),
        hl_group = groups.cursor,
        priority = 4097, -- over the member's own selection
      })
    else
      api.nvim_buf_set_extmark(buf, ns, cline, ccol, {
        virt_text = { { ' ', groups.cursor } },
        virt_text_pos = 'overlay',
      })
    end
    if i == 1 then
      -- The name at the end of the cursor's line: the one placement every version has.
      api.nvim_buf_set_extmark(buf, ns, cline, ccol, {
        virt_text = { { label, groups.name } },
        virt_text_pos = 'eol',
      })
    end
  end
  self.shown[p.memberId] = { buf = buf, path = p.path }
end

-- Ours ----------------------------------------------------------------------------------------

function Presence:schedule()
  if self.timer or self.detached then
    return
  end
  self.timer = true
  local wait = math.max(0, self.last_sent_at + INTERVAL_MS - now_ms())
  vim.defer_fn(function()
    self.timer = false
    self:_send()
  end, wait)
end

local VISUAL = { v = 'char', s = 'char', V = 'line', S = 'line', ['\22'] = 'block', ['\19'] = 'block' }

--- Our selections in the current window (a buffer of `doc`), the cursor's first.
local function selections(buf)
  local cursor = api.nvim_win_get_cursor(0)
  local cline, ccol, ctext = clamp(buf, { line = cursor[1] - 1, character = cursor[2] })
  local kind = VISUAL[api.nvim_get_mode().mode:sub(1, 1)]
  if not kind then
    local here = { line = cline, character = ccol }
    return { { anchor = here, active = here } }
  end
  local v = vim.fn.getpos('v')
  local aline, acol, atext = clamp(buf, { line = v[2] - 1, character = v[3] - 1 })
  local forward = cline > aline or (cline == aline and ccol >= acol)
  if kind == 'line' then
    if forward then
      acol, ccol = 0, #ctext
    else
      acol, ccol = #atext, 0
    end
  elseif kind == 'char' then
    -- Visual mode includes the character under its later end; a range excludes its end.
    if forward then
      ccol = math.min(#ctext, ccol + char_len(ctext, ccol))
    else
      acol = math.min(#atext, acol + char_len(atext, acol))
    end
  else
    -- A block: one selection per line, from the anchor's byte column to the cursor's (the
    -- same bytes on every line; exact for ASCII, approximate next to wide characters).
    local out = {}
    local step = forward and -1 or 1
    local left, right = math.min(acol, ccol), math.max(acol, ccol)
    for line = cline, aline, step do
      local _, lc, text = clamp(buf, { line = line, character = left })
      local _, rc = clamp(buf, { line = line, character = right })
      if rc < #text then
        rc = rc + char_len(text, rc)
      end
      local a, c = lc, rc
      if ccol < acol then
        a, c = rc, lc
      end
      out[#out + 1] = { anchor = { line = line, character = a }, active = { line = line, character = c } }
    end
    return out
  end
  return { { anchor = { line = aline, character = acol }, active = { line = cline, character = ccol } } }
end

local function visible(buf)
  for _, win in ipairs(api.nvim_tabpage_list_wins(0)) do
    if api.nvim_win_get_buf(win) == buf then
      return true
    end
  end
  return false
end

function Presence:_send()
  local session = self.session
  if self.detached or session.state ~= 'joined' then
    return
  end
  local doc = session:doc_for_buf(api.nvim_get_current_buf())
  if not doc then
    -- In another window (the chat, a file of our own): while the document we were in is still
    -- on screen we still look at it; otherwise we look at no document.
    local last = self.last_path and session.docs[self.last_path]
    if not (last and visible(last.buf)) then
      self:_post(nil)
    end
    return
  end
  self.waiting = nil
  if doc.closed or doc.resyncing or doc.resuming or not doc.conn or doc.dirty or #doc.unsent > 0 then
    -- Not sent yet: try again once they are (a 'doc' event), or after a while in case they
    -- turn out to be no change at all.
    self.waiting = doc
    vim.defer_fn(function()
      if self.waiting == doc then
        self:schedule()
      end
    end, INTERVAL_MS)
    return
  end
  self:_post(doc.path, doc.revision, selections(doc.buf))
end

function Presence:_post(path, revision, sels)
  local key = 'null'
  if path then
    local parts = { path, revision }
    for _, s in ipairs(sels) do
      parts[#parts + 1] = table.concat({ s.anchor.line, s.anchor.character, s.active.line, s.active.character }, ',')
    end
    key = table.concat(parts, ' ')
  end
  if key == self.last_key then
    return
  end
  self.last_key = key
  self.last_path = path
  self.last_sent_at = now_ms()
  local params = { path = vim.NIL }
  if path then
    params = { path = path, revision = revision, selections = sels }
  end
  self.sent = self.sent + 1
  self.session.conn.request('presence/update', params, function(err)
    if err then
      self.refused = self.refused + 1
      if self.last_key == key then
        self.last_key = nil -- best effort (§7): the next move tries again
      end
    end
  end)
end

return M
