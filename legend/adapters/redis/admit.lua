-- Admit a connection unless its user or its address holds the maximum already.
-- KEYS: the user's and the address's connection sets (zsets of "instance/connection" -> expiry ms), and the
-- instance registry (zset of instance id -> expiry ms).
-- ARGV: the new "instance/connection", ttl ms, max per user, max per address (0: none).
-- 0 admitted, 1 user full, 2 address full.
-- A set at its maximum first loses the entries of instances no longer in the registry (evicted by their
-- supervisor, left, or silent for the interest ttl): a dead instance's connections count no longer, and
-- the full scan is paid only by a set at its limit. The admitting instance's own entries always count.
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
local own = string.match(ARGV[1], '^([^/]+)/')
local function full(key, max)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ms)
  if max <= 0 or redis.call('ZCARD', key) < max then return false end
  local live = {}
  for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    local instance = string.match(member, '^([^/]+)/')
    if instance and instance ~= own then
      if live[instance] == nil then
        local until_ms = redis.call('ZSCORE', KEYS[3], instance)
        live[instance] = until_ms ~= false and tonumber(until_ms) > ms
      end
      if not live[instance] then redis.call('ZREM', key, member) end
    end
  end
  return redis.call('ZCARD', key) >= max
end
if full(KEYS[1], tonumber(ARGV[3])) then return 1 end
if full(KEYS[2], tonumber(ARGV[4])) then return 2 end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], ms + ttl, ARGV[1])
redis.call('ZADD', KEYS[2], ms + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return 0
