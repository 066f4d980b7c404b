-- KEYS: job, waiting
-- ARGV: job id, priority, expected generation, new generation, broker key, message, now,
--       key base
-- Returns: {1} or {0, reason}.
--
-- Supersedes the job's message: the old one becomes a no-op at claim. A job held
-- by the queue's limits takes its new place in its group (gate.lua, prepended).
local cur = redis.call('HMGET', KEYS[1], 'state', 'gen', 'group')
if not cur[1] then return {0, 'missing'} end
if cur[1] ~= 'waiting' and cur[1] ~= 'delayed' and cur[1] ~= 'limited' then
  return {0, cur[1]}
end
if cur[2] ~= ARGV[3] then return {0, 'superseded'} end
redis.call('HSET', KEYS[1], 'priority', ARGV[2], 'gen', ARGV[4])
if cur[1] == 'limited' then
  gate_insert(ARGV[8], ARGV[1], cur[3] or '', ARGV[2], ARGV[6], ARGV[5])
elseif cur[1] == 'waiting' then
  redis.call('LPUSH', ARGV[5], ARGV[6])
  redis.call('ZADD', KEYS[2], ARGV[7], ARGV[1])
else
  redis.call('HSET', KEYS[1], 'msg', ARGV[6], 'broker_key', ARGV[5])
end
return {1}
