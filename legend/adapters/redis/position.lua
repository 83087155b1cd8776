-- Move a shared position on (the replay provider's), atomically: one step, or by the time since it was
-- last moved (Redis's clock: the same for every instance). A holder that was paused moves it on from
-- where its successor left it, never back to where it was itself.
-- An instance that went on alone while Redis was away is not sent back: never below its own position.
-- KEYS: position ("position:saved-at"). ARGV: 'time' or 'step', the caller's own position (also the start
-- when none is saved), ttl ms (0: none). Returns the new position as a string (a Lua number reply would
-- be truncated).
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local own = tonumber(ARGV[2])
local position = own
local saved = redis.call('GET', KEYS[1])
if saved then
  local sep = string.find(saved, ':', 1, true)
  local last = tonumber(string.sub(saved, 1, sep - 1))
  if ARGV[1] == 'time' then
    position = last + math.max(0, now - tonumber(string.sub(saved, sep + 1)))
  else
    position = last + 1
  end
  if position < own then
    position = own
  end
end
local value = string.format('%.17g', position)
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], value .. ':' .. string.format('%.6f', now), 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], value .. ':' .. string.format('%.6f', now))
end
return value
