-- Admit a connection unless its user or its address holds the maximum already.
-- KEYS: the user's and the address's connection sets (zsets of connection id -> expiry ms).
-- ARGV: connection id, ttl ms, max per user, max per address (0: none). 0 admitted, 1 user full, 2 address full.
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ms)
local user_max, address_max = tonumber(ARGV[3]), tonumber(ARGV[4])
if user_max > 0 and redis.call('ZCARD', KEYS[1]) >= user_max then return 1 end
if address_max > 0 and redis.call('ZCARD', KEYS[2]) >= address_max then return 2 end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], ms + ttl, ARGV[1])
redis.call('ZADD', KEYS[2], ms + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return 0
