-- Give a lease up now, when this instance holds it, so that another instance takes it over at once.
-- KEYS: the lease. ARGV: holder. Returns 1 when it was given up, 0 when another held it (or nobody).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
