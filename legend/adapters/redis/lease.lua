-- Take a lease when free, renew it when ours; every new holding gets a new fencing token.
-- KEYS: lease, its fencing token counter (never expires: a token is never handed out twice; when Redis
-- lost it, it starts again from the time in ms, above any token handed out before).
-- ARGV: holder, ttl ms. Returns the holding's token (> 0), or 0 when another holds the lease.
local function new_token()
  if redis.call('EXISTS', KEYS[2]) == 0 then
    local now = redis.call('TIME')
    redis.call('SET', KEYS[2], string.format('%d', now[1] * 1000 + math.floor(now[2] / 1000)))
  end
  return redis.call('INCR', KEYS[2])
end
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  local token = redis.call('GET', KEYS[2])
  if token then
    return tonumber(token)
  end
  return new_token()
end
if holder then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return new_token()
