--- Undo and redo of the local user's own edits in a shared buffer (`u` and CTRL-R).
---
--- Neovim's undo cannot do this. It records every change, the server's included: `u` would
--- take back someone else's edit (and send that as ours). Keeping remote edits out of it is not
--- possible either: applying them with 'undolevels' at -1 clears the whole undo tree (on 0.7 as
--- on 0.11: setting the option syncs undo, and an unrecorded change then frees every entry),
--- `:undojoin` folds them into the user's last step instead, and even if they could be left
--- out, undo entries hold line numbers and whole old lines, which someone else's edits make
--- wrong.
---
--- So this history keeps the user's own changes (as sent: one ContentChange per flush, see
--- codesphere.sync) together with what they replaced. Where such a change's text is now is
--- tracked by two extmarks around it, which Neovim moves with every later edit, remote ones
--- included: the plugin itself never maps a position through a change (no transform logic).
--- Undoing puts the replaced text back between the marks; that is a local edit like any other
--- and goes to the server. The start mark has right gravity and the end mark left gravity, so
--- text someone inserts right before or after ours stays when ours is undone.
---
--- Changes are grouped into undo steps as Neovim groups them: by `changenr()` at the time of
--- the change (an Insert-mode session, one Normal-mode command, split by CTRL-G u).
---
--- A later change of ours can swallow marks of earlier entries (deleting text that holds them);
--- undoing it puts those marks back where they were relative to the restored text. Their
--- positions before the change come from a snapshot of every mark, taken whenever the buffer
--- holds the text last sent or applied.
local api = vim.api
local buffer = require('codesphere.buffer')

local M = {}

--- The most entries (changes) kept; the oldest steps go first.
local MAX_ENTRIES = 5000

local History = {}
History.__index = History

local function pos(line, character)
  return { line = line, character = character }
end

local function before(a, b)
  return a.line < b.line or (a.line == b.line and a.character < b.character)
end

local function same(a, b)
  return a.line == b.line and a.character == b.character
end

--- `p` relative to `origin`, and back.
local function relative(p, origin)
  if p.line == origin.line then
    return { dl = 0, dc = p.character - origin.character }
  end
  return { dl = p.line - origin.line, dc = p.character }
end

local function absolute(rel, origin)
  if rel.dl == 0 then
    return pos(origin.line, origin.character + rel.dc)
  end
  return pos(origin.line + rel.dl, rel.dc)
end

function M.new(buf)
  local self = setmetatable({
    buf = buf,
    ns = api.nvim_create_namespace('codesphere_undo_' .. buf),
    undo = {}, -- steps, oldest first; a step is {seq = changenr, entry, entry, ...}
    redo = {},
    at = {}, -- mark id -> position, as of the last snapshot
    live = {}, -- mark id -> true for the marks of every kept entry
    right = {}, -- mark id -> its right_gravity
    entries = 0,
  }, History)
  return self
end

--- Sets mark `id` (a new one without) at `p`; `right_gravity` nil keeps the mark's own.
function History:_mark(p, right_gravity, id)
  if right_gravity == nil then
    right_gravity = self.right[id]
  end
  local mid = api.nvim_buf_set_extmark(self.buf, self.ns, p.line, p.character, {
    id = id,
    right_gravity = right_gravity,
  })
  self.live[mid] = true
  self.right[mid] = right_gravity
  return mid
end

--- Where mark `id` is now, as a protocol position (never past the end of the text: a mark
--- can be left on the line after the last when the final newline goes).
function History:_where(id)
  local m = api.nvim_buf_get_extmark_by_id(self.buf, self.ns, id, {})
  local lines = buffer.text_lines(self.buf)
  if m[1] >= #lines then
    return pos(#lines - 1, #lines[#lines])
  end
  return pos(m[1], math.min(m[2], #lines[m[1] + 1]))
end

--- Records where every mark is now (call when the buffer holds the text last sent/applied).
function History:snapshot()
  self.at = {}
  for _, m in ipairs(api.nvim_buf_get_extmarks(self.buf, self.ns, 0, -1, {})) do
    self.at[m[1]] = pos(m[2], m[3])
  end
end

--- Marks (of kept entries, but not `except`'s) that were within [s, e] at the last snapshot,
--- relative to `s`.
function History:_inside(s, e, except)
  local found = {}
  for id, p in pairs(self.at) do
    if self.live[id] and not (except and (id == except.s or id == except.e))
      and not before(p, s) and not before(e, p) then
      found[#found + 1] = { id = id, rel = relative(p, s) }
    end
  end
  return found
end

function History:_drop_entry(entry)
  for _, id in ipairs({ entry.s, entry.e }) do
    pcall(api.nvim_buf_del_extmark, self.buf, self.ns, id)
    self.live[id] = nil
    self.right[id] = nil
  end
  self.entries = self.entries - 1
end

local function drop_steps(self, steps)
  for _, step in ipairs(steps) do
    for _, entry in ipairs(step) do
      self:_drop_entry(entry)
    end
  end
end

--- Forgets everything (the buffer was reloaded from the server).
function History:clear()
  api.nvim_buf_clear_namespace(self.buf, self.ns, 0, -1)
  self.undo, self.redo, self.at, self.live, self.right, self.entries = {}, {}, {}, {}, {}, 0
end

--- A change of ours: `change` (a ContentChange on the text `old`, as lines) is in the buffer
--- now; `seq` is the changenr() it was made in. Call before the next snapshot.
function History:record(old, change, seq)
  drop_steps(self, self.redo)
  self.redo = {}
  local s, oe = change.range.start, change.range['end']
  local removed = buffer.slice(old, s, oe)
  local new_end = buffer.end_of(s, change.text)
  local step = self.undo[#self.undo]
  if not (step and step.seq == seq) then
    step = { seq = seq }
    self.undo[#self.undo + 1] = step
  end
  -- Typing on at the end of the last change: one entry grows instead of one per keystroke.
  local last = step[#step]
  if last and removed == '' and self.at[last.e] and same(self.at[last.e], s) then
    local others = self:_inside(s, s, last)
    if #others == 0 then
      if not self.at[last.s] or not before(self.at[last.s], s) then
        self:_mark(self:_where(last.s), true, last.s) -- no longer empty: right gravity
      end
      self:_mark(new_end, false, last.e)
      return
    end
  end
  local restore = self:_inside(s, oe, nil)
  step[#step + 1] = {
    s = self:_mark(s, change.text ~= ''),
    e = self:_mark(new_end, false),
    removed = removed,
    restore = restore,
  }
  self.entries = self.entries + 1
  while self.entries > MAX_ENTRIES and #self.undo > 1 do
    drop_steps(self, { table.remove(self.undo, 1) })
  end
end

--- Puts `entry`'s replaced text back with `apply(change)`; returns the entry that undoes that.
function History:_revert(entry, apply)
  local s, e = self:_where(entry.s), self:_where(entry.e)
  if before(e, s) then
    s = e -- everything between was deleted and something inserted at that point
  end
  local current = buffer.slice(buffer.text_lines(self.buf), s, e)
  local swallowed = self:_inside(s, e, entry)
  apply({ range = { start = s, ['end'] = e }, text = entry.removed })
  local back_end = buffer.end_of(s, entry.removed)
  for _, r in ipairs(entry.restore) do
    -- Only marks that ended up in the text put back: one that Neovim moved past it (someone
    -- typed between our changes) is where it belongs already.
    if self.live[r.id] then
      local now = self:_where(r.id)
      if not before(now, s) and not before(back_end, now) then
        pcall(self._mark, self, absolute(r.rel, s), nil, r.id)
      end
    end
  end
  -- The same marks now hold the text put back, for the way back.
  self:_mark(s, entry.removed ~= '', entry.s)
  self:_mark(back_end, false, entry.e)
  self:snapshot()
  return { s = entry.s, e = entry.e, removed = current, restore = swallowed }, s
end

--- Undoes (`redo` false) or redoes up to `count` steps with `apply(change)`, which changes the
--- buffer as a local edit. Returns how many steps were taken and where the last one starts.
function History:step(redo, count, apply)
  local from, to = self.undo, self.redo
  if redo then
    from, to = self.redo, self.undo
  end
  local done, where = 0, nil
  for _ = 1, count do
    local step = table.remove(from)
    if not step then
      break
    end
    -- The way back applies the inverses in the opposite order, so they are listed as applied.
    local back = { seq = -1 }
    for i = #step, 1, -1 do
      back[#back + 1], where = self:_revert(step[i], apply)
    end
    to[#to + 1] = back
    done = done + 1
  end
  return done, where
end

M.History = History
return M
