-- Sequence, store and publish one message, atomically.
-- KEYS: seq, history, topic registry, dedupe key, price log, journal, fencing token of a lease, archive,
--       the archive's trim bound.
-- ARGV: topic, body, history size, seq floor, stream ttl ms, announce, control channel, dedupe ttl ms,
--       keep a longer history (external messages never shrink one), stream, what it enters the price log
--       as ('price', 'status'; '': nothing), the log's size, journal size, the fencing token ('': none),
--       how long the archive keeps it in ms (0: a message that is not must-deliver).
-- Returns the seq, 0 when the dedupe key refused it, -1 when fenced: the message was published on behalf
-- of a lease (the quote poller's) that another holder took since (a new token), so nothing is done.
-- The floor keeps seq monotonic when Redis lost its data: the caller passes the last seq it delivered.
-- The dedupe key makes a message publish once: an external message heard by every instance, or an alert
-- trigger retried after a crash. A price or a market status enters the price log (a Redis stream) in the
-- same step, so its readers see it exactly between the prices published before and after it. Every
-- message enters the journal (stream, seq): what a listener that was away replays from history. A
-- must-deliver message also enters the archive (a Redis stream of payloads, trimmed by age, under the
-- journal entry's own id so that a listener's checkpoint compares exactly): what it replays from when an
-- outage outran the history.
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
local entry = redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[13], '*', 's', ARGV[10], 'q', seq)
local keep = tonumber(ARGV[15])
if keep > 0 then
  -- the journal's id, unless the archive is ahead of it (the journal was deleted): then a fresh one
  local added = redis.pcall('XADD', KEYS[8], entry, 's', ARGV[10], 'q', seq, 'd', text)
  if type(added) == 'table' and added.err then
    added = redis.call('XADD', KEYS[8], '*', 's', ARGV[10], 'q', seq, 'd', text)
  end
  local ms = tonumber(string.match(added, '^(%d+)'))
  local bound = string.format('%d-0', ms - keep)
  if redis.call('XTRIM', KEYS[8], 'MINID', bound) > 0 then
    redis.call('SET', KEYS[9], bound)  -- every id trimmed so far is below it
  end
end
redis.call('PUBLISH', ARGV[1], text)
return seq
