-- KEYS: job, waiting
-- ARGV: job id, expected generation, new generation, broker key, message, now
-- Returns: 1 when published, 0 when the job is no longer waiting in that generation.
--
-- A waiting job whose message a paused worker handed back, a dead worker
-- reserved, or that vanished on its way to a worker: publish a fresh message
-- (any copy of the old one becomes a no-op at claim).
local cur = redis.call('HMGET', KEYS[1], 'state', 'gen')
if cur[1] ~= 'waiting' or cur[2] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'gen', ARGV[3])
redis.call('LPUSH', ARGV[4], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
return 1
