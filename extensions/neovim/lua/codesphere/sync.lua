--- The client side of the revision rule (protocol.md §6.3) for one buffer.
---
--- The text lives in the buffer; this module keeps the `revision`, the number of unacknowledged
--- `didChange` requests (at most one in flight) and the `unsent` changes gathered meanwhile.
--- It never transforms: local edits go out as typed, server edits are applied only when the
--- rule says so. (Text, positions and applying changes: codesphere.buffer.)
---
--- Without a connection (`conn == nil`) edits are still gathered; codesphere.resume places
--- them on the next one. For that every didChange sent since the revision last moved is kept
--- (`kept`), acknowledged or not: the buffer holds them all, and an acknowledgement of the old
--- connection may never have arrived.
---
--- Local edits: `nvim_buf_attach`'s `on_bytes` marks the document dirty; once the command is
--- done (vim.schedule) the buffer is compared with a copy of the lines as last sent/applied
--- ("shadow") and the difference goes out as one ContentChange. (Reading the new text inside
--- on_bytes is not reliable: during `J` the callback runs before the buffer holds the result.)
local api = vim.api
local buffer = require('codesphere.buffer')
local undo = require('codesphere.undo')

local M = {}

local RATE_LIMITED = 1020

local Doc = {}
Doc.__index = Doc

--- Creates the state of `path` shown in `buf`.
--- opts: {buf, path, conn (rpc client), readonly, on_event = fn(kind, doc, detail),
--- history = true to keep the user's own changes for `undo` (codesphere.undo)}
--- Events: 'changed'; 'error' (detail: an error); 'resynced' ({lost = n}); 'deleted' (the
--- file is gone from the room: found when resuming).
function M.new(opts)
  local self = setmetatable({
    buf = opts.buf,
    path = opts.path,
    conn = opts.conn,
    readonly = opts.readonly or false,
    on_event = opts.on_event or function() end,
    revision = 0,
    seq = 0,
    unacked = 0,
    unsent = {},
    kept = {}, -- didChange params sent since `revision` last moved (resent by `resume`)
    resend = {}, -- kept edits still to resend on this connection (codesphere.resume)
    gen = 0, -- bumped on every (re)load: replies to older requests are ignored
    suppress = 0, -- > 0 while we change the buffer ourselves
    flush_scheduled = false,
    resyncing = false,
    needs_resync = false, -- a resync is due once connected again
    resuming = false, -- the resuming didOpen is in flight
    closed = false,
    attached = false,
    shadow = { '' }, -- the text as last sent or applied, as lines (see _text_lines)
    dirty = false, -- the buffer changed since the shadow was taken
    change_seq = nil, -- changenr() of the first change since the shadow was taken
    replaying = false, -- the changes being collected are an undo or redo
  }, Doc)
  if opts.history and not self.readonly then
    self.history = undo.new(self.buf)
  end
  return self
end

--- True when the protocol text ends with the buffer's implicit final newline.
function Doc:final_nl()
  return buffer.final_nl(self.buf)
end

function Doc:_set_final_nl(value)
  local bo = vim.bo[self.buf]
  self.suppress = self.suppress + 1
  bo.eol = value
  bo.fixeol = value
  self.suppress = self.suppress - 1
end

--- The protocol text of the buffer.
function Doc:text()
  return buffer.text(self.buf)
end

--- The number of edits not yet acknowledged, counting gathered unsent changes as one.
function Doc:pending()
  return self.unacked + ((#self.unsent > 0 or self.dirty) and 1 or 0)
end

--- Runs fn with the buffer modifiable and our own changes not echoed to the server.
function Doc:_quietly(fn)
  local bo = vim.bo[self.buf]
  local was_modifiable = bo.modifiable
  local was_modified = bo.modified
  self.suppress = self.suppress + 1
  bo.modifiable = true
  local ok, err = pcall(fn)
  bo.modifiable = was_modifiable
  self.suppress = self.suppress - 1
  if not was_modified or self.readonly then
    bo.modified = false
  end
  return ok, err
end

--- Replaces the buffer with `text` at `revision` (didOpen result; resync).
function Doc:load(text, revision, last_seq)
  self.gen = self.gen + 1
  self.revision = revision
  self.unacked = 0
  self.unsent = {}
  self.kept = {}
  self.resend = {}
  self.resyncing = false
  self.needs_resync = false
  if last_seq and last_seq > self.seq then
    self.seq = last_seq
  end
  local final_nl = text:sub(-1) == '\n'
  local body = final_nl and text:sub(1, -2) or text
  local ok, err = self:_quietly(function()
    api.nvim_buf_set_lines(self.buf, 0, -1, false, buffer.split(body))
    self:_set_final_nl(final_nl)
  end)
  if not ok then
    error(err)
  end
  vim.bo[self.buf].modified = false
  vim.bo[self.buf].modifiable = not self.readonly
  self.dirty = false
  if self.history then
    self.history:clear()
  end
  self:_set_shadow(self:_text_lines())
  if not self.attached then
    self:_attach()
  end
end

function Doc:_attach()
  self.attached = true
  -- Toggling 'eol'/'fixeol' adds or removes the final "\n" without any on_bytes.
  self.option_autocmd = api.nvim_create_autocmd('OptionSet', {
    pattern = { 'endofline', 'eol', 'fixendofline', 'fixeol' },
    callback = function()
      if not self.closed and self.suppress == 0 and not self.readonly
        and api.nvim_get_current_buf() == self.buf then
        self.dirty = true
        self:_schedule_flush()
      end
    end,
  })
  api.nvim_buf_attach(self.buf, false, {
    on_bytes = function(...)
      return self:_on_bytes(...)
    end,
    -- Both: putting an empty line after the last line of a 'noeol' buffer gives on_lines but
    -- no on_bytes (Neovim 0.7 to 0.11). Either only marks the buffer dirty.
    on_lines = function(...)
      return self:_on_bytes(...)
    end,
    on_reload = function()
      -- :edit! replaced the whole buffer without on_bytes: send it whole.
      if self.closed then
        return true
      end
      if self.suppress == 0 then
        self.dirty = true
        self:_schedule_flush()
      end
    end,
    on_detach = function()
      self.attached = false
    end,
  })
end

--- The protocol text as lines: T == table.concat(lines, "\n") (a final "" when T ends in "\n").
function Doc:_text_lines()
  return buffer.text_lines(self.buf)
end

--- The one change that takes the text `old` (lines) to `new` (lines), or nil if equal.
M.diff = buffer.diff

--- Turns what changed in the buffer since the last look into one unsent change.
function Doc:_collect()
  if not self.dirty or self.closed then
    return
  end
  self.dirty = false
  local lines = self:_text_lines()
  local change = buffer.diff(self.shadow, lines)
  if change then
    self.unsent[#self.unsent + 1] = change
    if self.history and not self.replaying then
      -- Without a changenr() (an option toggled, :edit!) the change is a step of its own.
      self.history:record(self.shadow, change, self.change_seq or ('own' .. vim.loop.hrtime()))
    end
  end
  self.change_seq = nil
  self:_set_shadow(lines)
end

--- The buffer holds `lines`, sent or applied: compare the next changes with it.
function Doc:_set_shadow(lines)
  self.shadow = lines
  if self.history then
    self.history:snapshot()
  end
end

--- Buffer changes (on_bytes, on_lines) only mark the document dirty: at on_bytes time the
--- buffer may not hold the new text yet (for example during J), so the text is read once the
--- command is done.
function Doc:_on_bytes()
  if self.closed then
    return true
  end
  if self.suppress > 0 or self.readonly then
    return
  end
  if not self.dirty and self.history then
    -- Which undo step Neovim puts this change in (one Insert session, one command): the
    -- history groups ours the same way. changenr() speaks of the current buffer only.
    self.change_seq = api.nvim_get_current_buf() == self.buf and vim.fn.changenr() or nil
  end
  self.dirty = true
  self:_schedule_flush()
end

function Doc:_schedule_flush()
  if self.flush_scheduled then
    return
  end
  self.flush_scheduled = true
  vim.schedule(function()
    self.flush_scheduled = false
    self:_flush()
  end)
end

--- Sends the gathered changes when nothing is in flight (one didChange at a time).
function Doc:_flush()
  self:_collect()
  if self.closed or not self.conn or self.resyncing or self.resuming or self.unacked > 0
    or #self.unsent == 0 then
    return
  end
  self.seq = self.seq + 1
  local params = {
    path = self.path,
    revision = self.revision,
    seq = self.seq,
    contentChanges = self.unsent,
  }
  self.unsent = {}
  self.unacked = self.unacked + 1
  self.kept[#self.kept + 1] = params
  self:_send(params)
  self.on_event('changed', self)
end

function Doc:_send(params)
  local gen = self.gen
  -- A closed connection is no error: the edit is kept and resent after the reconnect.
  self.conn.request('textDocument/didChange', params, function(err, result)
    if gen ~= self.gen or self.closed then
      return
    end
    if err then
      if err.code == RATE_LIMITED then
        local wait = (type(err.data) == 'table' and tonumber(err.data.retryAfterMs)) or 100
        vim.defer_fn(function()
          if gen == self.gen and not self.closed then
            self:_send(params) -- the same revision, seq and changes (§6.4)
          end
        end, math.max(1, math.floor(wait)))
        return
      end
      self.on_event('error', self, err)
      self:resync()
      return
    end
    self.unacked = self.unacked - 1
    if #self.resend > 0 then
      self:_send(table.remove(self.resend, 1))
    end
    if self.unacked == 0 and #self.unsent == 0 and not self.dirty then
      self.kept = {}
      if not self:_apply(result.catchUp or {}) then
        return
      end
      self.revision = result.revision
    end
    self.on_event('changed', self)
    self:_flush()
  end)
end

--- A `textDocument/remoteChange` for this document (§6.3 step 3).
function Doc:remote_change(params)
  if self.closed or not self.conn or self.resyncing or self.resuming then
    return
  end
  local r = params.revision
  if self.unacked > 0 or #self.unsent > 0 or self.dirty or r <= self.revision then
    return -- dropped: the next acknowledgement's catchUp carries it
  end
  if r > self.revision + 1 then
    self:resync() -- something was lost
    return
  end
  if self:_apply(params.contentChanges or {}) then
    self.revision = r
    self.on_event('changed', self)
  end
end

--- Applies server changes to the buffer; on failure resynchronises and returns false.
function Doc:_apply(changes)
  if #changes == 0 then
    return true
  end
  local ok, err = self:_quietly(function()
    for _, change in ipairs(changes) do
      self:_apply_one(change)
    end
  end)
  self:_set_shadow(self:_text_lines())
  if not ok then
    self.on_event('error', self, { message = 'could not apply a server edit: ' .. tostring(err) })
    self:resync()
    return false
  end
  return true
end

function Doc:_apply_one(change)
  buffer.apply(self.buf, change, function(value)
    self:_set_final_nl(value)
  end)
end

--- Undoes (`redo` false) or redoes `count` steps of the user's own changes (codesphere.undo).
--- The result is a local edit, sent like any other. Returns how many steps were taken, nil
--- without a history.
function Doc:undo(count, redo)
  if not self.history or self.closed then
    return nil
  end
  self:_collect() -- what was typed last is the first to undo
  local ok, done, where = pcall(self.history.step, self.history, redo, count, function(change)
    self:_apply_one(change)
  end)
  if not ok then
    -- A change that no longer fits the text (for example past a final newline since removed):
    -- whatever was done goes out as usual; the history starts afresh.
    self.history:clear()
    api.nvim_echo({ { 'CodeSphere: cannot undo: ' .. tostring(done), 'WarningMsg' } }, true, {})
    done = 0
  elseif done == 0 then
    api.nvim_echo({ { redo and 'Already at your newest change' or 'Already at your oldest change' } }, false, {})
  end
  -- The buffer changed as if typed: it is sent as our edit, not recorded as a new change.
  self.replaying = true
  self.dirty = true
  self:_collect()
  self.replaying = false
  self:_schedule_flush()
  if where and api.nvim_get_current_buf() == self.buf then -- the cursor goes to the change
    local line = math.min(where.line + 1, api.nvim_buf_line_count(self.buf))
    local len = #api.nvim_buf_get_lines(self.buf, line - 1, line, true)[1]
    pcall(api.nvim_win_set_cursor, 0, { line, math.min(where.character, len) })
  end
  return done
end

--- Re-opens the document and replaces the buffer (§6.4); unacknowledged edits are lost.
function Doc:resync()
  if self.closed or self.resyncing then
    return
  end
  if not self.conn then
    self.needs_resync = true -- done when the connection is back
    return
  end
  self.resyncing = true
  self.gen = self.gen + 1
  local lost = self:pending()
  self.needs_resync = false
  self.unacked = 0
  self.unsent = {}
  self.kept = {}
  self.resend = {}
  self.dirty = false
  local gen = self.gen
  self.conn.request('textDocument/didOpen', { path = self.path }, function(err, result)
    if self.closed or gen ~= self.gen then
      return
    end
    if err then
      self.resyncing = false
      self.on_event('error', self, err)
      return
    end
    self:load(result.text, result.revision, result.lastSeq)
    self.on_event('resynced', self, { lost = lost })
  end)
end

--- Stops syncing this buffer (leave, close, disconnect). The buffer stays as it is.
function Doc:close()
  self.closed = true
  self.gen = self.gen + 1
  if self.option_autocmd then
    pcall(api.nvim_del_autocmd, self.option_autocmd)
    self.option_autocmd = nil
  end
end

require('codesphere.resume').extend(Doc)

M.Doc = Doc
return M
