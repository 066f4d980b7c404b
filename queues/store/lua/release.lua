-- KEYS: queue meta, paused index, waiting
-- ARGV: base, now, then per job: id, expected generation, broker key, message
-- Returns: {released, 1 if the queue now runs}.
--
-- Releases parked jobs of a queue being resumed: each gets a new generation
-- and its message is pushed at the consumer end, so parked jobs run next, in
-- order (the caller passes them newest first). The paused flag is cleared in
-- the same script once nothing is parked, so no job can be parked after its
-- release and stay behind. Their scores go below every waiting job's, since
-- they are taken first (the order of the waiting index, see queues.store.broker).
local base, released = ARGV[1], 0
local lowest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')[2] or ARGV[2]
for i = 3, #ARGV, 4 do
  local id = ARGV[i]
  local jkey = base .. 'job:' .. id
  local cur = redis.call('HMGET', jkey, 'state', 'gen')
  if cur[1] == 'paused' and cur[2] == ARGV[i + 1] then
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZADD', KEYS[3], tonumber(lowest) - released - 1, id)
    redis.call('HSET', jkey, 'state', 'waiting', 'gen', tonumber(cur[2]) + 1,
               'runnable_at', ARGV[2])
    redis.call('RPUSH', ARGV[i + 2], ARGV[i + 3])
    released = released + 1
  end
end
if redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('HDEL', KEYS[1], 'paused')
  return {released, 1}
end
return {released, 0}
