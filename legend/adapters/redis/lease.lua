-- Take a lease when free, renew it when ours; every new holding gets a new fencing token.
-- KEYS: lease, its fencing token counter (never expires: a token is never handed out twice).
-- ARGV: holder, ttl ms. Returns the holding's token (> 0), or 0 when another holds the lease.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  local token = redis.call('GET', KEYS[2])
  if token then
    return tonumber(token)
  end
  return redis.call('INCR', KEYS[2])
end
if holder then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return redis.call('INCR', KEYS[2])
