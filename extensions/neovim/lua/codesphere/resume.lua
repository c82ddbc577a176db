--- Resuming a document on a new connection (protocol.md §6.5): methods of codesphere.sync's
--- Doc, kept apart from the revision rule itself.
local buffer = require('codesphere.buffer')

local M = {}

local DOCUMENT_NOT_FOUND = 1003
--- Resent edits in flight at once after a reconnect: the rest follow as answers come, so that a
--- long run of kept edits stays under the server's request rate (a refused one would be resent
--- after others that build on it).
local RESEND_WINDOW = 32

local Doc = {}

--- The connection is gone: keep every edit (and gather new ones) for `resume`. Replies that
--- the old connection may still deliver are ignored.
function Doc:detach()
  self.conn = nil
  self.gen = self.gen + 1
  self.resend = {}
  self.resuming = false
  if self.resyncing then
    self.resyncing = false
    self.needs_resync = true
  end
  self.on_event('changed', self)
end

--- Takes the server's text (the head) without losing the cursor: only the difference is
--- applied to the buffer.
function Doc:_take_text(text, revision)
  local change = buffer.diff(self.shadow, buffer.split(text))
  if change and not self:_apply({ change }) then
    return
  end
  self.revision = revision
end

--- Re-opens the document on a new connection (protocol.md §6.5); `done()` once answered.
---
--- Always with `revision`: when nothing of ours is waiting, the answer's text is taken (as a
--- plain open would give it), and keystrokes typed while the didOpen is in flight are not
--- lost. Otherwise our text stays, every kept didChange goes out again exactly as first sent
--- (the server acknowledges the ones it already committed without applying them twice) and
--- the changes gathered offline follow once those are answered (one edit in flight).
function Doc:resume(conn, done)
  done = done or function() end
  self.conn = conn
  self.gen = self.gen + 1
  if self.closed then
    return done()
  end
  if self.needs_resync then
    self.needs_resync = false
    self:resync()
    return done()
  end
  self.resuming = true
  local gen = self.gen
  conn.request('textDocument/didOpen', { path = self.path, revision = self.revision }, function(err, result)
    if self.closed or gen ~= self.gen then
      return done()
    end
    self.resuming = false
    if err then
      if err.code == DOCUMENT_NOT_FOUND then
        self.on_event('deleted', self, err)
      else
        -- Too far behind (or otherwise unplaceable): open plainly; our edits are lost.
        self.on_event('error', self, err)
        self:resync()
      end
      return done()
    end
    self:_collect()
    if (result.lastSeq or 0) > self.seq then
      self.seq = result.lastSeq
    end
    if #self.kept == 0 and #self.unsent == 0 then
      self.unacked = 0
      self:_take_text(result.text, result.revision)
    else
      self.unacked = #self.kept
      for i, params in ipairs(self.kept) do
        if i <= RESEND_WINDOW then
          self:_send(params)
        else
          self.resend[#self.resend + 1] = params
        end
      end
    end
    self.on_event('changed', self)
    self:_flush()
    done()
  end)
end

function M.extend(class)
  for name, fn in pairs(Doc) do
    class[name] = fn
  end
end

return M
