-- KEYS: job, waiting, active, failed, stats, queue meta, paused index, worker, minute bucket
-- ARGV: job id, generation, owner token, now, max age ms (0: no limit), bucket ttl ms,
--       the claiming worker's hostname (kept in the record as 'worker'), key base
-- Returns: {1, attempt, max attempts} when claimed, {2, record...} when it
--          expired, else {0, reason} ('rate_limited' / 'concurrency_limited': the
--          queue's limits refuse it now; the caller holds it back, gate_return.lua).
--
-- The lock lasts the record's lock_ms (the queue type's stalledInterval). A job
-- runnable for longer than max age (DESIGN §8.1), or past its options' deadline_ms
-- (Celery's ``expires``, §8.23), fails as 'expired' instead, through fail_job
-- (fail_job.lua, prepended by the loader). On a paused queue the job is parked
-- (state 'paused', in order); on a paused worker it is left waiting. Whatever the
-- outcome past the generation check, the worker's hash gets 'last_claim_ms' = now.
-- On a queue with limits (gate.lua, prepended by the loader) a job that may not
-- start now is refused, and a start is counted.
local cur = redis.call('HMGET', KEYS[1], 'state', 'gen', 'attempts_made', 'lock_ms',
                      'max_attempts', 'runnable_at', 'opts', 'group')
if not cur[1] then return {0, 'missing'} end
if cur[1] ~= 'waiting' then return {0, cur[1]} end
if cur[2] ~= ARGV[2] then return {0, 'superseded'} end
-- This worker took the current message of a waiting job: it consumes (a live worker
-- that stops doing so is reported stuck, queues.store.workers). Only an existing hash
-- is touched, so a worker that has not heartbeated yet gets no hash without a TTL.
if redis.call('EXISTS', KEYS[8]) == 1 then
  redis.call('HSET', KEYS[8], 'last_claim_ms', ARGV[4])
end
local base = ARGV[8]
local limits = gate_limits(base)
if limits.paused then
  redis.call('ZREM', KEYS[2], ARGV[1])
  gate_left(base, ARGV[1], cur[8])
  redis.call('ZADD', KEYS[7], redis.call('HINCRBY', KEYS[6], 'park_seq', 1), ARGV[1])
  redis.call('HSET', KEYS[1], 'state', 'paused')
  return {0, 'parked'}
end
if redis.call('HGET', KEYS[8], 'paused') == '1' then return {0, 'worker-paused'} end
local now = tonumber(ARGV[4])
local max_age, why = tonumber(ARGV[5]), nil
if max_age > 0 and now - tonumber(cur[6]) > max_age then
  why = 'job was runnable for longer than MAX_JOB_AGE before a worker took it'
elseif cur[7] and not string.find(cur[7], '"deadline_ms":null', 1, true)
    and now > (tonumber(cjson.decode(cur[7]).deadline_ms) or math.huge) then
  why = 'job was not started before its deadline (expires)'
end
if why then
  redis.call('ZREM', KEYS[2], ARGV[1])
  gate_left(base, ARGV[1], cur[8])
  redis.call('HINCRBY', KEYS[5], 'expired', 1)
  local record = fail_job(KEYS[1], ARGV[1], {
    now = now, name = redis.call('HGET', KEYS[1], 'name'), stats = KEYS[5], index = KEYS[4],
    bucket = KEYS[9], ttl = ARGV[6], untimed = true,
    details = {'failed_reason', 'expired', 'error_type', 'JobExpired', 'error', why}})
  record = flow_reply(record, flow_settle(KEYS[1], ARGV[1], now, ARGV[6], 'failed',
                                          'JobExpired', why))
  table.insert(record, 1, 2)
  return record
end
local group = cur[8] or ''
if limits.on then
  local refused = gate_refuses(base, limits, group, now)
  if refused then
    redis.call('HINCRBY', KEYS[5], 'refused_' .. refused, 1)
    return {0, refused}
  end
end
local attempt = tonumber(cur[3]) + 1
if limits.on then gate_started(base, limits, ARGV[1], group, now, attempt) end
redis.call('HSET', KEYS[1], 'state', 'active', 'owner', ARGV[3], 'worker', ARGV[7],
           'processed_at', now, 'attempts_made', attempt)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], now + tonumber(cur[4]), ARGV[1])
return {1, attempt, tonumber(cur[5])}
