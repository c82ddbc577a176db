-- CodeSphere commands; the module loads on first use. See :help codesphere.
if vim.g.loaded_codesphere then
  return
end
vim.g.loaded_codesphere = true

local function cs()
  return require('codesphere')
end

vim.api.nvim_create_user_command('CodeSphereJoin', function(args)
  cs().join(args.args)
end, { nargs = 1, desc = 'CodeSphere: join the room of a link http://host:port/#token=…&room=…' })

vim.api.nvim_create_user_command('CodeSphereOpen', function(args)
  cs().open(args.args ~= '' and args.args or nil)
end, {
  nargs = '?',
  complete = function(arglead)
    return cs().complete_files(arglead)
  end,
  desc = 'CodeSphere: open a file of the room',
})

vim.api.nvim_create_user_command('CodeSphereLeave', function()
  cs().leave()
end, { nargs = 0, desc = 'CodeSphere: leave the room' })

vim.api.nvim_create_user_command('CodeSphereUsers', function()
  cs().users()
end, { nargs = 0, desc = 'CodeSphere: list the room members' })

vim.api.nvim_create_user_command('CodeSphereFollow', function(args)
  cs().follow(args.args)
end, {
  nargs = 1,
  complete = function(arglead, cmdline)
    return cs().complete_members(arglead, cmdline)
  end,
  desc = 'CodeSphere: follow a member (their file and cursor) until you type',
})

vim.api.nvim_create_user_command('CodeSphereUnfollow', function()
  cs().unfollow()
end, { nargs = 0, desc = 'CodeSphere: stop following' })

vim.api.nvim_create_user_command('CodeSphereChat', function(args)
  cs().chat(args.args)
end, { nargs = '?', desc = 'CodeSphere: open the chat, or send {message} to it' })

vim.api.nvim_create_user_command('CodeSphereShare', function(args)
  -- As :edit would: %, ~ and wildcards are expanded (a name matching nothing is kept).
  local files = {}
  for _, arg in ipairs(args.fargs) do
    local matches = vim.fn.expand(arg, false, true)
    vim.list_extend(files, #matches > 0 and matches or { arg })
  end
  cs().share(files)
end, { nargs = '*', complete = 'file', desc = 'CodeSphere: share the buffer (or files) into the room' })

-- `:edit codesphere://<path>` (or reloading such a buffer) loads it from the server.
vim.api.nvim_create_autocmd('BufReadCmd', {
  group = vim.api.nvim_create_augroup('codesphere_read', { clear = true }),
  pattern = 'codesphere://*',
  callback = function(args)
    cs().read_cmd(args.buf, args.match)
  end,
})
