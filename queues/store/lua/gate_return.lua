-- KEYS: job, waiting
-- ARGV: job id, expected generation, new generation, broker key, message, key base
-- Returns: 1 when held back, 0 when the job moved on (nothing is written then).
--
-- A claim refused a waiting job because the queue's limits leave no room now
-- (claim.lua): the job is held again in its place (gate.lua, prepended), with a
-- message of a new generation, and goes out when gate_pump finds room.
local cur = redis.call('HMGET', KEYS[1], 'state', 'gen', 'group', 'priority')
if cur[1] ~= 'waiting' or cur[2] ~= ARGV[2] then return 0 end
local base, group = ARGV[6], cur[3] or ''
redis.call('ZREM', KEYS[2], ARGV[1])
gate_left(base, ARGV[1], group)
redis.call('HSET', KEYS[1], 'gen', ARGV[3])
gate_insert(base, ARGV[1], group, cur[4], ARGV[5], ARGV[4])
return 1
