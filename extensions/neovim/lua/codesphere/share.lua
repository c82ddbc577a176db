--- :CodeSphereShare: puts local files into the joined room as new documents
--- (`workspace/createFile`, protocol.md §5), each named by its path relative to the current
--- directory, then shows the room's document where the local buffer was shown.
---
--- A file loaded in a buffer is shared as the buffer holds it (unsaved changes included);
--- another is read from disk. The local buffer stays as it was: only the windows change.
local api = vim.api

local M = {}

local ALREADY_EXISTS = 1004

local errmsg = require('codesphere.connection').errmsg

--- True when `s` is valid UTF-8 (the protocol's JSON must be; a stray byte would end the
--- connection instead of failing this one file).
function M.is_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local len
    if c < 0x80 then
      len = 1
    elseif c >= 0xC2 and c <= 0xDF then
      len = 2
    elseif c >= 0xE0 and c <= 0xEF then
      len = 3
    elseif c >= 0xF0 and c <= 0xF4 then
      len = 4
    else
      return false
    end
    for k = 1, len - 1 do
      local b = s:byte(i + k)
      if not b or b < 0x80 or b > 0xBF then
        return false
      end
    end
    if len == 3 then
      local b = s:byte(i + 1)
      if (c == 0xE0 and b < 0xA0) or (c == 0xED and b > 0x9F) then
        return false -- overlong, or a surrogate
      end
    elseif len == 4 then
      local b = s:byte(i + 1)
      if (c == 0xF0 and b < 0x90) or (c == 0xF4 and b > 0x8F) then
        return false
      end
    end
    i = i + len
  end
  return true
end

--- The room path of local file `file`: relative to the current directory, "/"-separated.
function M.room_path(file)
  local function under(abs, dir)
    if dir:sub(-1) ~= '/' then
      dir = dir .. '/'
    end
    if abs:sub(1, #dir) == dir then
      return abs:sub(#dir + 1)
    end
    return nil
  end
  local abs = vim.fn.fnamemodify(file, ':p'):gsub('\\', '/')
  local cwd = vim.fn.getcwd():gsub('\\', '/')
  local rel = under(abs, cwd)
  if not rel then -- a symlink on either side
    local real_abs, real_cwd = vim.loop.fs_realpath(abs), vim.loop.fs_realpath(cwd)
    rel = real_abs and real_cwd and under(real_abs, real_cwd)
  end
  if not rel then
    return nil, file .. ' is not under the current directory ' .. cwd
  end
  if rel == '' or rel:sub(-1) == '/' then
    return nil, file .. ' is a directory'
  end
  return rel
end

--- The protocol text of a loaded buffer, with the line ends of its 'fileformat' (the server
--- turns "\r\n" into "\n" and records it, §5).
local function buffer_text(buf)
  if api.nvim_buf_get_offset(buf, api.nvim_buf_line_count(buf)) == 0 then
    return '' -- an empty buffer: an empty file, not "\n"
  end
  local bo = vim.bo[buf]
  local sep = bo.fileformat == 'dos' and '\r\n' or '\n'
  local text = table.concat(api.nvim_buf_get_lines(buf, 0, -1, true), sep)
  if bo.eol or bo.fixeol then
    text = text .. sep
  end
  return text
end

--- The loaded buffer of file `name`, or nil. (bufnr() takes a pattern: "a.txt" would also
--- match "codesphere://a.txt".)
local function loaded_buffer(name)
  local full = vim.fn.fnamemodify(name, ':p')
  for _, buf in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(buf) and api.nvim_buf_get_name(buf) == full then
      return buf
    end
  end
  return nil
end

--- {path, text, buf} of what `file` names (a buffer number or a file name), or nil, error.
function M.source(file)
  local buf = file
  if type(file) ~= 'number' then
    buf = loaded_buffer(file)
  end
  if buf and api.nvim_buf_is_loaded(buf) then
    local name = api.nvim_buf_get_name(buf)
    if name:match('^codesphere://') then
      return nil, name:gsub('^codesphere://', '') .. ' is already a document of the room'
    end
    if name == '' then
      return nil, 'the buffer has no file name (:CodeSphereShare {file} shares a file by name)'
    end
    if vim.bo[buf].buftype ~= '' then
      return nil, name .. ' is not a file'
    end
    local path, err = M.room_path(name)
    if not path then
      return nil, err
    end
    return { path = path, text = buffer_text(buf), buf = buf }
  end
  if type(file) == 'number' then
    return nil, 'buffer ' .. file .. ' is not loaded'
  end
  local path, err = M.room_path(file)
  if not path then
    return nil, err
  end
  local fd = io.open(vim.fn.fnamemodify(file, ':p'), 'rb')
  if not fd then
    return nil, 'cannot read ' .. file
  end
  local text = fd:read('*a')
  fd:close()
  return { path = path, text = text or '' }
end

--- Shares `files` (file names; the current buffer when empty) one after the other;
--- `done(errors, shared)` with a list of messages and a list of {path, buf}.
function M.share(session, files, done)
  local sources, errors, shared = {}, {}, {}
  if #files == 0 then
    files = { api.nvim_get_current_buf() }
  end
  for _, file in ipairs(files) do
    local src, err = M.source(file)
    if not src then
      errors[#errors + 1] = err
    elseif not M.is_utf8(src.text) then
      errors[#errors + 1] = src.path .. ' is not UTF-8 text'
    else
      sources[#sources + 1] = src
    end
  end
  local origin_win = api.nvim_get_current_win()
  local function show(src, buf)
    local shown = false
    for _, win in ipairs(api.nvim_list_wins()) do
      if src.buf and api.nvim_win_get_buf(win) == src.buf then
        api.nvim_win_set_buf(win, buf)
        shown = true
      end
    end
    -- A file that was not on screen: the first one goes where :CodeSphereShare was typed.
    if not shown and #shared == 0 and api.nvim_win_is_valid(origin_win) then
      api.nvim_win_set_buf(origin_win, buf)
    end
  end
  local function next_one(i)
    local src = sources[i]
    if not src then
      return done(errors, shared)
    end
    if session.state ~= 'joined' then
      errors[#errors + 1] = src.path .. ': not in a room'
      return next_one(i + 1)
    end
    session.conn.request('workspace/createFile', { path = src.path, text = src.text }, function(err, result)
      if err then
        if type(err) == 'table' and err.code == ALREADY_EXISTS then
          errors[#errors + 1] = src.path .. ' already exists in the room (:CodeSphereOpen ' .. src.path
            .. ' opens it)'
        else
          errors[#errors + 1] = src.path .. ': ' .. errmsg(err)
        end
        return next_one(i + 1)
      end
      session.files[src.path] = result -- for :CodeSphereOpen completion (no notification to us)
      session:open(src.path, function(oerr, buf)
        if oerr then
          errors[#errors + 1] = src.path .. ' was shared but could not be opened: ' .. tostring(oerr)
        else
          show(src, buf)
          shared[#shared + 1] = { path = src.path, buf = buf }
        end
        next_one(i + 1)
      end)
    end)
  end
  next_one(1)
end

return M
