-- What the live instances report: the union of their interest, or each one's figures.
-- KEYS: instance registry. ARGV: key prefix of the per-instance keys, "interest" or "figures".
local now = redis.call('TIME')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now[1] * 1000 + math.floor(now[2] / 1000))
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
if ARGV[2] == 'interest' then
  local keys = {}
  for i, id in ipairs(ids) do keys[#keys + 1] = ARGV[1] .. 'interest:' .. id end
  if #keys == 0 then return out end
  return redis.call('SUNION', unpack(keys))
end
for i, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGETALL', ARGV[1] .. 'figures:' .. id)
end
return out
