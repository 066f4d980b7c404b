-- KEYS: job, delayed, waiting
-- ARGV: job id, now, key base
-- Returns: {1} or {0, its state or 'missing'}.
--
-- Makes one delayed job runnable now: it leaves the delayed set, its stored
-- message is pushed, and it is waiting from now (the due time it had is gone).
-- On a queue with limits it is held instead (gate.lua, prepended).
local rec = redis.call('HMGET', KEYS[1], 'state', 'msg', 'broker_key', 'group', 'priority')
if not rec[1] then return {0, 'missing'} end
if rec[1] ~= 'delayed' or not rec[2] then return {0, rec[1]} end
redis.call('ZREM', KEYS[2], ARGV[1])
local base = ARGV[3]
if gate_limits(base).on then
  redis.call('HSET', KEYS[1], 'runnable_at', ARGV[2])
  gate_insert(base, ARGV[1], rec[4] or '', rec[5], rec[2], rec[3])
  gate_pump(base, tonumber(ARGV[2]), 1)
  return {1}
end
redis.call('HSET', KEYS[1], 'state', 'waiting', 'runnable_at', ARGV[2])
redis.call('HDEL', KEYS[1], 'msg', 'broker_key')
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('LPUSH', rec[3], rec[2])
return {1}
