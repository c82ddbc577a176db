--- Highlight groups: one set per member colour for the others' cursors, selections and names,
--- plus plain groups used when per-member colours are off (see :help codesphere-highlights).
---
--- Every group is defined with `:highlight default`, so a definition of the user's (in their
--- config or colour scheme) wins. `:colorscheme` clears all groups: they are defined again on
--- the ColorScheme event, against the new background.
local api = vim.api

local M = {}

--- setup({colors = false}) turns per-member colours off: everyone gets the plain groups.
M.colors = true

local PLAIN = { cursor = 'CodeSphereCursor', selection = 'CodeSphereSelection', name = 'CodeSphereName' }

local defined = {} -- "rrggbb" -> true since the last :colorscheme

local function define_plain()
  vim.cmd('highlight default CodeSphereCursor cterm=reverse gui=reverse')
  vim.cmd('highlight default link CodeSphereSelection Visual')
  vim.cmd('highlight default link CodeSphereName PmenuSel')
  vim.cmd('highlight default link CodeSphereChatTime Comment')
  vim.cmd('highlight default link CodeSphereChatName Title')
end

local function split_rgb(n)
  return math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256
end

--- The background the selection colour is blended into: Normal's, else black or white.
local function background()
  local ok, normal = pcall(api.nvim_get_hl_by_name, 'Normal', true)
  if ok and type(normal) == 'table' and normal.background then
    return { split_rgb(normal.background) }
  end
  if vim.o.background == 'light' then
    return { 255, 255, 255 }
  end
  return { 0, 0, 0 }
end

local CUBE = { 0, 95, 135, 175, 215, 255 }

--- The nearest of the 256 xterm colours, for terminals without 'termguicolors'.
local function xterm256(r, g, b)
  local function nearest_level(v)
    local best, dist = 1, math.huge
    for i, level in ipairs(CUBE) do
      if math.abs(level - v) < dist then
        best, dist = i, math.abs(level - v)
      end
    end
    return best - 1
  end
  local ri, gi, bi = nearest_level(r), nearest_level(g), nearest_level(b)
  local function dist2(r2, g2, b2)
    return (r - r2) ^ 2 + (g - g2) ^ 2 + (b - b2) ^ 2
  end
  local cube = 16 + 36 * ri + 6 * gi + bi
  local cube_dist = dist2(CUBE[ri + 1], CUBE[gi + 1], CUBE[bi + 1])
  local grey_index = math.max(0, math.min(23, math.floor(((r + g + b) / 3 - 8) / 10 + 0.5)))
  local grey = 8 + 10 * grey_index
  if dist2(grey, grey, grey) < cube_dist then
    return 232 + grey_index
  end
  return cube
end

local function hex(r, g, b)
  return string.format('#%02x%02x%02x', r, g, b)
end

--- Black or white, whichever reads better on (r, g, b) (as the web page's labels).
local function text_on(r, g, b)
  if 0.299 * r + 0.587 * g + 0.114 * b > 150 then
    return 0, 0, 0
  end
  return 255, 255, 255
end

local function define_colour(key)
  local r, g, b = tonumber(key:sub(1, 2), 16), tonumber(key:sub(3, 4), 16), tonumber(key:sub(5, 6), 16)
  local fr, fg, fb = text_on(r, g, b)
  -- A selection is the colour at about a third over the background, as the web page's
  -- translucent one, so the text stays readable.
  local bg = background()
  local alpha = 0.3
  local sr = math.floor(r * alpha + bg[1] * (1 - alpha) + 0.5)
  local sg = math.floor(g * alpha + bg[2] * (1 - alpha) + 0.5)
  local sb = math.floor(b * alpha + bg[3] * (1 - alpha) + 0.5)
  local solid = string.format('guibg=%s guifg=%s ctermbg=%d ctermfg=%d', hex(r, g, b), hex(fr, fg, fb),
    xterm256(r, g, b), xterm256(fr, fg, fb))
  vim.cmd('highlight default CodeSphereCursor_' .. key .. ' ' .. solid)
  vim.cmd('highlight default CodeSphereName_' .. key .. ' ' .. solid .. ' cterm=bold gui=bold')
  vim.cmd(string.format('highlight default CodeSphereSelection_%s guibg=%s ctermbg=%d', key, hex(sr, sg, sb),
    xterm256(sr, sg, sb)))
  defined[key] = true
end

--- The groups {cursor, selection, name} for a member of colour `color` ("#rrggbb").
function M.groups(color)
  if not M.colors or type(color) ~= 'string' or not color:match('^#%x%x%x%x%x%x$') then
    return PLAIN
  end
  local key = color:sub(2):lower()
  if not defined[key] then
    define_colour(key)
  end
  return {
    cursor = 'CodeSphereCursor_' .. key,
    selection = 'CodeSphereSelection_' .. key,
    name = 'CodeSphereName_' .. key,
  }
end

--- Defines the plain groups and redefines everything after each :colorscheme.
function M.setup(colors)
  M.colors = colors ~= false
  define_plain()
  api.nvim_create_autocmd('ColorScheme', {
    group = api.nvim_create_augroup('codesphere_highlight', { clear = true }),
    callback = function()
      -- Cursors already drawn keep their group names: define those groups again at once.
      local keys = vim.tbl_keys(defined)
      defined = {}
      define_plain()
      for _, key in ipairs(keys) do
        define_colour(key)
      end
    end,
  })
end

return M
