-- Register this instance and replace its interest and figures, all expiring after the ttl.
-- KEYS: instance registry (zset of id -> expiry ms), this instance's interest set, its figures hash.
-- ARGV: instance id, ttl ms, number of figure fields n, n field/value pairs, then the tickers.
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
redis.call('ZADD', KEYS[1], ms + ttl, ARGV[1])
local n = tonumber(ARGV[3])
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('HSET', KEYS[3], 'seen', now[1])
for i = 1, n do redis.call('HSET', KEYS[3], ARGV[2 + 2 * i], ARGV[3 + 2 * i]) end
redis.call('PEXPIRE', KEYS[3], ttl)
local first = 4 + 2 * n
for i = first, #ARGV, 1000 do
  redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if #ARGV >= first then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
