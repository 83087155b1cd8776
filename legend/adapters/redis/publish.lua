-- Sequence, store and publish one message, atomically.
-- KEYS: seq, history, topic registry, dedupe key, price log, journal, fencing token of a lease.
-- ARGV: topic, body, history size, seq floor, stream ttl ms, announce, control channel, dedupe ttl ms,
--       keep a longer history (external messages never shrink one), stream, what it enters the price log
--       as ('price', 'status'; '': nothing), the log's size, journal size, the fencing token ('': none).
-- Returns the seq, 0 when the dedupe key refused it, -1 when fenced: the message was published on behalf
-- of a lease (the quote poller's) that another holder took since (a new token), so nothing is done.
-- The floor keeps seq monotonic when Redis lost its data: the caller passes the last seq it delivered.
-- The dedupe key makes a message publish once: an external message heard by every instance, or an alert
-- trigger retried after a crash. A price or a market status enters the price log (a Redis stream) in the
-- same step, so its readers see it exactly between the prices published before and after it. Every
-- message enters the journal (stream, seq): what a listener that was away replays from history.
if ARGV[14] ~= '' and redis.call('GET', KEYS[7]) ~= ARGV[14] then
  return -1
end
if tonumber(ARGV[8]) > 0 and not redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[8]) then
  return 0
end
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[4])
if seq < floor then seq = floor end
seq = seq + 1
redis.call('SET', KEYS[1], seq)
local body = ARGV[2]
local text = string.sub(body, 1, -2) .. ',"seq":' .. string.format('%d', seq) .. '}'
local size = tonumber(ARGV[3])
if size > 0 then
  if ARGV[9] == '1' then
    local length = redis.call('LLEN', KEYS[2])
    if length > size then size = length end
  end
  redis.call('RPUSH', KEYS[2], text)
  redis.call('LTRIM', KEYS[2], -size, -1)
end
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
if ARGV[6] == '1' and redis.call('SADD', KEYS[3], ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[7], ARGV[1] .. '\n' .. ARGV[10])
end
if ARGV[11] ~= '' then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[12], '*', 'k', ARGV[11], 'd', text)
end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[13], '*', 's', ARGV[10], 'q', seq)
redis.call('PUBLISH', ARGV[1], text)
return seq
