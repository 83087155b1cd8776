-- Spend one expected reconnect of an address (a draining instance closed its connections).
-- KEYS: the address's counter of expected reconnects. 1 when one was left (and spent), else 0.
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left <= 0 then return 0 end
redis.call('DECR', KEYS[1])
return 1
