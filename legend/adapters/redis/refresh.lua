-- Keep this instance's connections registered: those of an instance that died expire after the ttl.
-- KEYS: pairs of connection sets, one pair per connection. ARGV: ttl ms, then the connection ids.
local now = redis.call('TIME')
local until_ms = now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do
  for j = 0, 1 do
    local key = KEYS[2 * (i - 2) + 1 + j]
    redis.call('ZADD', key, 'XX', until_ms, ARGV[i])
    redis.call('PEXPIRE', key, tonumber(ARGV[1]))
  end
end
return 1
