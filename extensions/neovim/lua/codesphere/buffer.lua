--- The buffer of a document: creating it, reading it as protocol text, and ContentChanges to
--- and from it (protocol.md §3).
---
--- Positions are UTF-8 (negotiated in `initialize`): `character` is a byte column, exactly
--- Neovim's column. The protocol text is the buffer's lines joined with "\n", plus a final
--- "\n" when the buffer has 'eol' (or 'fixeol'). As lines, a text T is kept as the list whose
--- concatenation with "\n" is T (so a final "" when T ends in "\n").
local api = vim.api

local M = {}

function M.split(text)
  return vim.split(text, '\n', { plain = true })
end

local function pos(line, character)
  return { line = line, character = character }
end

--- True when the protocol text ends with the buffer's implicit final newline.
function M.final_nl(buf)
  local bo = vim.bo[buf]
  return bo.eol or bo.fixeol
end

--- The protocol text of `buf` as lines (see the module's comment).
function M.text_lines(buf)
  local lines = api.nvim_buf_get_lines(buf, 0, -1, true)
  if M.final_nl(buf) then
    lines[#lines + 1] = ''
  end
  return lines
end

--- The protocol text of `buf`.
function M.text(buf)
  return table.concat(M.text_lines(buf), '\n')
end

local function is_continuation(s, i)
  local b = s:byte(i)
  return b ~= nil and b >= 0x80 and b < 0xC0
end

--- Line and byte column of byte offset `off` in `s`, counted from (line0, 0).
local function offset_position(s, off, line0)
  local line, line_start = line0, 1
  local i = 1
  while true do
    local nl = s:find('\n', i, true)
    if not nl or nl > off then
      break
    end
    line = line + 1
    line_start = nl + 1
    i = nl + 1
  end
  return pos(line, off - line_start + 1)
end

--- The one change that takes the text `old` (lines) to `new` (lines), or nil if equal.
--- Positions are UTF-8 byte columns and never fall inside a character.
function M.diff(old, new)
  local na, nb = #old, #new
  local m = math.min(na, nb)
  local p = 0
  while p < m - 1 and old[p + 1] == new[p + 1] do
    p = p + 1
  end
  local suf = 0
  while suf < m - p - 1 and old[na - suf] == new[nb - suf] do
    suf = suf + 1
  end
  local a = table.concat(old, '\n', p + 1, na - suf)
  local b = table.concat(new, '\n', p + 1, nb - suf)
  if a == b then
    return nil
  end
  local limit = math.min(#a, #b)
  local pre = 0
  while pre < limit and a:byte(pre + 1) == b:byte(pre + 1) do
    pre = pre + 1
  end
  while pre > 0 and is_continuation(a, pre + 1) do
    pre = pre - 1
  end
  local post = 0
  while post < limit - pre and a:byte(#a - post) == b:byte(#b - post) do
    post = post + 1
  end
  while post > 0 and is_continuation(a, #a - post + 1) do
    post = post - 1
  end
  local start = offset_position(a, pre, p)
  local stop = offset_position(a, #a - post, p)
  return { range = { start = start, ['end'] = stop }, text = b:sub(pre + 1, #b - post) }
end

--- The text of `lines` (protocol lines) from position `s` to position `e`.
function M.slice(lines, s, e)
  if s.line == e.line then
    return (lines[s.line + 1] or ''):sub(s.character + 1, e.character)
  end
  local parts = { (lines[s.line + 1] or ''):sub(s.character + 1) }
  for i = s.line + 2, e.line do
    parts[#parts + 1] = lines[i]
  end
  parts[#parts + 1] = (lines[e.line + 1] or ''):sub(1, e.character)
  return table.concat(parts, '\n')
end

--- Where `text` ends when inserted at `start`.
function M.end_of(start, text)
  local lines = M.split(text)
  if #lines == 1 then
    return pos(start.line, start.character + #text)
  end
  return pos(start.line + #lines - 1, #lines[#lines])
end

--- Applies one protocol ContentChange to `buf`. `set_final_nl(bool)` sets the implicit final
--- newline (the caller keeps its option watcher quiet). Raises on a position outside the text.
function M.apply(buf, change, set_final_nl)
  local text = change.text
  if not change.range then
    local final_nl = text:sub(-1) == '\n'
    api.nvim_buf_set_lines(buf, 0, -1, false, M.split(final_nl and text:sub(1, -2) or text))
    set_final_nl(final_nl)
    return
  end
  local s, e = change.range.start, change.range['end']
  local n = api.nvim_buf_line_count(buf)
  if e.line < n then
    api.nvim_buf_set_text(buf, s.line, s.character, e.line, e.character, M.split(text))
    return
  end
  -- The range ends after the final newline: (n, 0), valid only when the text has one.
  if not M.final_nl(buf) or e.line ~= n or e.character ~= 0 then
    error('position past the end of the text')
  end
  local last = #api.nvim_buf_get_lines(buf, n - 1, n, true)[1]
  local keeps_nl = text:sub(-1) == '\n'
  local body = keeps_nl and text:sub(1, -2) or text
  if s.line >= n then -- an insertion after the final newline
    if text ~= '' then
      api.nvim_buf_set_text(buf, n - 1, last, n - 1, last, M.split('\n' .. body))
    end
  elseif text == '' and s.character == 0 and s.line > 0 then
    -- Whole last lines deleted: the text still ends with a newline, so the buffer keeps 'eol'
    -- (rather than an empty last line without it) and the lines go.
    api.nvim_buf_set_lines(buf, s.line, n, true, {})
    return
  else
    api.nvim_buf_set_text(buf, s.line, s.character, n - 1, last, M.split(body))
  end
  if not keeps_nl and not (s.line >= n and text == '') then
    set_final_nl(false)
  end
end

--- The buffer named `name` (reused if it exists) for the document `path`: 'buftype'
--- "acwrite", since every acknowledged edit is already durable on the server (§6.5) and :write
--- only reports; unloading it (:bdelete, :bwipeout) ends the sync, so that the next
--- :CodeSphereOpen opens it afresh. `handlers`: {on_write(buf), on_unload(buf)}.
function M.create(name, path, handlers)
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
      vim.bo[buf].modified = false
      handlers.on_write(buf)
    end,
  })
  api.nvim_create_autocmd({ 'BufUnload', 'BufWipeout' }, {
    group = group,
    buffer = buf,
    callback = function()
      handlers.on_unload(buf)
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

--- Maps `u` and CTRL-R (Normal mode, with a count) in `buf` to `undo(count, redo)`, which
--- returns false when it does not apply (then Neovim's own undo runs).
function M.map_undo(buf, undo)
  local function map(lhs, redo)
    vim.keymap.set('n', lhs, function()
      local count = vim.v.count1
      if not undo(count, redo) then
        vim.cmd('normal! ' .. count .. (redo and '\18' or 'u'))
      end
    end, { buffer = buf, desc = redo and 'CodeSphere: redo your own change' or 'CodeSphere: undo your own change' })
  end
  map('u', false)
  map('<C-r>', true)
end

return M
