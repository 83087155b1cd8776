-- Leave the cluster: give up the leases this instance holds, drop its registration, interest and figures.
-- KEYS: leases to give up, then the registry, interest and figures of this instance. ARGV: holder.
local n = #KEYS
for i = 1, n - 3 do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
redis.call('ZREM', KEYS[n - 2], ARGV[1])
redis.call('DEL', KEYS[n - 1], KEYS[n])
return 1
