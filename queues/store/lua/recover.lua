-- KEYS: job, active, waiting, failed, stats, this minute's stats bucket
-- ARGV: job id, now, mode ('stalled': the lock expired; 'lost': the owner's
--       process died), owner token (for 'lost'), expected generation,
--       new generation, broker key, message, bucket ttl ms, key base
-- Returns: {1} when returned to waiting with a fresh message, {2, record...}
--          when it stalled more than max_stalled times and failed, else {0}.
--
-- The failure goes through fail_job (fail_job.lua, prepended by the loader).
local cur = redis.call('HMGET', KEYS[1], 'state', 'owner', 'gen', 'stalled_count', 'max_stalled',
                      'name', 'group')
local id, now = ARGV[1], tonumber(ARGV[2])
if cur[1] ~= 'active' or cur[3] ~= ARGV[5] then return {0} end
if ARGV[3] == 'lost' and cur[2] ~= ARGV[4] then return {0} end
if ARGV[3] == 'stalled' then
  local deadline = redis.call('ZSCORE', KEYS[2], id)
  if not deadline or tonumber(deadline) > now then return {0} end
end
local count = (tonumber(cur[4]) or 0) + 1
redis.call('HSET', KEYS[1], 'stalled_count', count)
redis.call('HDEL', KEYS[1], 'owner')
redis.call('ZREM', KEYS[2], id)
gate_left(ARGV[10], id, cur[7])  -- back to waiting bypasses the gate: claim checks the limits
redis.call('HINCRBY', KEYS[5], 'stalled', 1)
redis.call('HINCRBY', KEYS[5], 'stalled|' .. cur[6], 1)
if count > tonumber(cur[5]) then
  local record = fail_job(KEYS[1], id, {
    now = now, name = cur[6], stats = KEYS[5], index = KEYS[4], bucket = KEYS[6],
    ttl = ARGV[9], untimed = true,
    details = {'failed_reason', 'stalled', 'error_type', 'JobStalled',
               'error', 'job stalled more than maxStalledCount times (worker lost)'}})
  record = flow_reply(record, flow_settle(KEYS[1], id, now, ARGV[9], 'failed', 'JobStalled',
                                          'job stalled more than maxStalledCount times'))
  table.insert(record, 1, 2)
  return record
end
redis.call('HSET', KEYS[1], 'state', 'waiting', 'gen', ARGV[6], 'runnable_at', now)
redis.call('ZADD', KEYS[3], now, id)
redis.call('LPUSH', ARGV[7], ARGV[8])
return {1}
