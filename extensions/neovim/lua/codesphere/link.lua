--- Parses a CodeSphere link `http://host:port/#token=T&room=R` into the WebSocket URL and the
--- fragment's values. The token travels in the fragment; it is never put into the ws URL.
local M = {}

local function decode(s)
  s = s:gsub('+', ' ')
  return (s:gsub('%%(%x%x)', function(h)
    return string.char(tonumber(h, 16))
  end))
end

--- Returns `{ws_url = "ws://host:port/ws", token = T, room = R or nil}` or nil, error.
function M.parse(link)
  if type(link) ~= 'string' then
    return nil, 'no link given'
  end
  link = vim.trim(link)
  local scheme, host, path, fragment = link:match('^(https?)://([^/#?]+)([^#]*)#(.*)$')
  if not scheme then
    return nil, 'not a CodeSphere link (expected http://host:port/#token=…&room=…)'
  end
  local values = {}
  for pair in fragment:gmatch('[^&]+') do
    local key, value = pair:match('^([^=]*)=(.*)$')
    if key then
      values[decode(key)] = decode(value)
    end
  end
  if not values.token or values.token == '' then
    return nil, 'the link has no token'
  end
  path = path:gsub('%?.*$', ''):gsub('/+$', '')
  local ws_scheme = scheme == 'https' and 'wss' or 'ws'
  return {
    ws_url = ws_scheme .. '://' .. host .. path .. '/ws',
    token = values.token,
    room = (values.room ~= nil and values.room ~= '') and values.room or nil,
  }
end

return M
