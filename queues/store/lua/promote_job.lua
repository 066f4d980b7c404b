-- KEYS: job, delayed, waiting
-- ARGV: job id, now
-- Returns: {1} or {0, its state or 'missing'}.
--
-- Makes one delayed job runnable now: it leaves the delayed set, its stored
-- message is pushed, and it is waiting from now (the due time it had is gone).
local rec = redis.call('HMGET', KEYS[1], 'state', 'msg', 'broker_key')
if not rec[1] then return {0, 'missing'} end
if rec[1] ~= 'delayed' or not rec[2] then return {0, rec[1]} end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'waiting', 'runnable_at', ARGV[2])
redis.call('HDEL', KEYS[1], 'msg', 'broker_key')
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('LPUSH', rec[3], rec[2])
return {1}
