-- KEYS: job, waiting
-- ARGV: job id, priority, expected generation, new generation, broker key, message, now
-- Returns: {1} or {0, reason}.
--
-- Supersedes the job's message: the old one becomes a no-op at claim.
local cur = redis.call('HMGET', KEYS[1], 'state', 'gen')
if not cur[1] then return {0, 'missing'} end
if cur[1] ~= 'waiting' and cur[1] ~= 'delayed' then return {0, cur[1]} end
if cur[2] ~= ARGV[3] then return {0, 'superseded'} end
redis.call('HSET', KEYS[1], 'priority', ARGV[2], 'gen', ARGV[4])
if cur[1] == 'waiting' then
  redis.call('LPUSH', ARGV[5], ARGV[6])
  redis.call('ZADD', KEYS[2], ARGV[7], ARGV[1])
else
  redis.call('HSET', KEYS[1], 'msg', ARGV[6], 'broker_key', ARGV[5])
end
return {1}
