-- KEYS: job, job logs, active, target index (completed or failed), stats,
--       this minute's stats bucket, the worker's hash
-- ARGV: job id, owner token, now, target state, base, bucket ttl ms,
--       then field/value pairs to store (result, or error details)
-- Returns: 1 when completed; when failed, the final record as a flat list (also
--          when it was deleted: the dead letter is made from it); 0 when the
--          caller no longer owns the job (it was recovered as stalled and belongs
--          to another run): nothing is written then. A completed job's record is
--          not sent back: nothing reads it, and on the hot path its ~30 fields
--          cost the worker more to parse than the rest of the script.
--
-- The record's keep_<state> says what to retain: -1 every finished record,
-- 0 none (this one is deleted), N the newest N. A failure goes through fail_job
-- (fail_job.lua, prepended by the loader); only this script adds its timings and
-- the histogram, which is why it is never 'untimed'. On a queue with limits the
-- freed slot goes to the next held job at once (gate_pump, gate.lua).
local cur = redis.call('HMGET', KEYS[1], 'state', 'owner', 'processed_at', 'runnable_at',
                      'keep_' .. ARGV[4], 'attempts_made', 'name', 'group')
if cur[1] ~= 'active' or cur[2] ~= ARGV[2] then return 0 end
local id, now, state, base = ARGV[1], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local keep = tonumber(cur[5]) or -1
redis.call('HDEL', KEYS[1], 'owner')
redis.call('ZREM', KEYS[3], id)
gate_left(base, id, cur[8])
if gate_limits(base).on then gate_pump(base, now, 16) end
if tonumber(cur[6]) > 1 then
  -- feeds the retry success rate: outcomes of jobs that needed a retry
  redis.call('HINCRBY', KEYS[5], 'retried_' .. state, 1)
end
local started = tonumber(cur[3])
local took = now - started
local bound = '+Inf'
for _, le in ipairs({5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
                     300000}) do
  if took <= le then bound = tostring(le) break end
end
redis.call('HINCRBY', KEYS[5], 'duration|' .. cur[7] .. '|' .. bound, 1)
redis.call('HINCRBY', KEYS[5], 'duration_sum|' .. cur[7], took)
redis.call('HINCRBY', KEYS[6], 'proc_ms', took)
redis.call('HINCRBY', KEYS[6], 'wait_ms', started - tonumber(cur[4]))
if redis.call('EXISTS', KEYS[7]) == 1 then
  redis.call('HINCRBY', KEYS[7], state == 'completed' and 'processed' or 'failed', 1)
end
local record
local given = {}  -- the stored fields: result, or error details
for i = 7, #ARGV, 2 do given[ARGV[i]] = ARGV[i + 1] end
if state == 'failed' then
  record = fail_job(KEYS[1], id, {
    now = now, name = cur[7], stats = KEYS[5], index = keep ~= 0 and KEYS[4],
    bucket = KEYS[6], ttl = ARGV[6], details = {unpack(ARGV, 7)}})
  -- a child of a flow: its parent learns of it in this script (flow.lua)
  record = flow_reply(record, flow_settle(KEYS[1], id, now, ARGV[6], 'failed',
                                          given.error_type, given.error))
else
  if #ARGV > 6 then
    redis.call('HSET', KEYS[1], unpack(ARGV, 7))
  end
  redis.call('HSET', KEYS[1], 'state', state, 'finished_at', now)
  if keep ~= 0 then redis.call('ZADD', KEYS[4], now, id) end
  redis.call('HINCRBY', KEYS[5], state, 1)
  redis.call('HINCRBY', KEYS[5], state .. '|' .. cur[7], 1)
  redis.call('HINCRBY', KEYS[6], state, 1)
  redis.call('PEXPIRE', KEYS[6], ARGV[6])
  flow_settle(KEYS[1], id, now, ARGV[6], 'completed', given.result or 'null')
  record = 1
end
if keep == 0 then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[1] .. ':children', KEYS[1] .. ':results',
             KEYS[1] .. ':failures')
  return record
end
if keep > 0 then
  local excess = redis.call('ZCARD', KEYS[4]) - keep
  if excess > 0 then
    for _, old in ipairs(redis.call('ZRANGE', KEYS[4], 0, excess - 1)) do
      local old_key = base .. 'job:' .. old
      redis.call('DEL', old_key, old_key .. ':logs', old_key .. ':children',
                 old_key .. ':results', old_key .. ':failures')
    end
    redis.call('ZREMRANGEBYRANK', KEYS[4], 0, excess - 1)
  end
end
return record
