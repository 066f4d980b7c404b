-- KEYS: a finished-state index (completed or failed)
-- ARGV: base, cutoff time, limit
-- Returns: how many records were deleted.
--
-- Deletes up to ``limit`` records that entered the state before the cutoff.
local base = ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local key = base .. 'job:' .. id  -- with its log and, for a parent, its flow keys
  redis.call('DEL', key, key .. ':logs', key .. ':children', key .. ':results',
             key .. ':failures')
  redis.call('ZREM', KEYS[1], id)
end
return #ids
