-- Take a lease when free, renew it when ours.
-- KEYS: lease. ARGV: holder, ttl ms. 1 held, 0 held by another.
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
