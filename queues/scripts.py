"""The Lua scripts behind every job transition.

Each transition is one script, so it is atomic across any number of workers.
Job store and Celery broker share one Redis (DESIGN §4a), so a script can write
the job record *and* push the prebuilt Celery message: a job is never recorded
without a message, nor published without a record.

All values arrive as strings; times are integer milliseconds since the epoch.
Besides the state, each script counts what it did in the queue's stats hash,
per job type as ``<metric>|<job name>`` (and, for processing time, one
histogram bucket ``duration|<job name>|<upper bound ms>`` per finished job):
the Prometheus collector reads these, so metrics are cluster-wide and cost
no extra round trip.
Job keys are derived inside the scripts from the queue's key base
(``keys.queue_base``), which carries the queue's hash tag.

Every script that pushes a job's message also sets the job's score in the
waiting index: ``now`` for an ``LPUSH`` (the producers' end), below every
waiting job for an ``RPUSH`` (the end kombu pops). So, per broker list, the
scores rise from the popping end, which is how ``queues.store.broker`` tells a
message that left its list from one still in it.
"""

from __future__ import annotations

# KEYS: waiting, delayed, stats, known-queues set
# ARGV: base, now, queue, due (0: runnable now), broker key, N, then N
#       field/value pairs every job of the call shares (among them 'name'),
#       then per job: id, data JSON, trace id, task id, message
# One call resolves one set of options, so what its jobs share arrives once
# and each job costs an EXISTS and one HSET; the state index and the broker
# list get one ZADD and one LPUSH per 1,000 jobs (LPUSH of several values
# pushes them in order, as one LPUSH each would; Lua's unpack takes at most
# ~8,000 values, and an error half-way would leave records without messages).
# Returns one flag per job: 1 created, 0 the id already existed (nothing written).
ENQUEUE = """
local base, now, queue, bkey = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
local delayed = tonumber(ARGV[4]) > tonumber(now)
local score = delayed and ARGV[4] or now
local fields = {'gen', 1, 'created_at', now, 'attempts_made', 0, 'progress', 0,
                'state', delayed and 'delayed' or 'waiting', 'runnable_at', score}
local first, name = 7 + 2 * tonumber(ARGV[6])
for i = 7, first - 1, 2 do
  fields[#fields + 1], fields[#fields + 2] = ARGV[i], ARGV[i + 1]
  if ARGV[i] == 'name' then name = ARGV[i + 1] end
end
-- each job's own values go in the slots after s; a delayed job keeps its
-- message and broker list in the record until the promoter pushes it
local s = #fields
fields[s + 1], fields[s + 3], fields[s + 5], fields[s + 7] = 'id', 'data', 'trace_id', 'task_id'
if delayed then
  fields[s + 9], fields[s + 11], fields[s + 12] = 'msg', 'broker_key', bkey
end
local out, indexed, msgs, pending, created = {}, {}, {}, 0, 0
local function push()
  redis.call('ZADD', delayed and KEYS[2] or KEYS[1], unpack(indexed, 1, 2 * pending))
  if not delayed then redis.call('LPUSH', bkey, unpack(msgs, 1, pending)) end
  pending = 0
end
for i = first, #ARGV, 5 do
  local id = ARGV[i]
  local jkey = base .. 'job:' .. id
  if redis.call('EXISTS', jkey) == 1 then
    out[#out + 1] = 0
  else
    fields[s + 2], fields[s + 4], fields[s + 6], fields[s + 8] =
      id, ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    if delayed then fields[s + 10] = ARGV[i + 4] else msgs[pending + 1] = ARGV[i + 4] end
    redis.call('HSET', jkey, unpack(fields))
    indexed[2 * pending + 1], indexed[2 * pending + 2] = score, id
    pending, created = pending + 1, created + 1
    if pending == 1000 then push() end
    out[#out + 1] = 1
  end
end
if pending > 0 then push() end
if created > 0 then
  redis.call('HINCRBY', KEYS[3], 'scheduled|' .. name, created)
  redis.call('HINCRBY', KEYS[3], 'scheduled', created)
  redis.call('HSETNX', KEYS[3], 'first_activity_ms', now)  -- queues.stats windows start here
  redis.call('SADD', KEYS[4], queue)
end
return out
"""

# Prepended to CLAIM and RECOVER: a terminal failure the finish script never sees (expired,
# stalled too often) counts in this minute's bucket; 'untimed': not in the average times.
_COUNT_UNTIMED_FAILURE = """
local function count_untimed_failure(bucket, ttl)
  redis.call('HINCRBY', bucket, 'failed', 1); redis.call('HINCRBY', bucket, 'untimed', 1)
  redis.call('PEXPIRE', bucket, ttl)
end
"""

# KEYS: job, waiting, active, failed, stats, queue meta, paused index, worker, minute bucket
# ARGV: job id, generation, owner token, now, max age ms (0: no limit), bucket ttl ms
# The lock lasts the record's lock_ms (the queue type's stalledInterval). A job
# runnable for longer than max age (DESIGN §8.1), or past its options' deadline_ms
# (Celery's ``expires``, §8.23), fails as 'expired' instead. On a paused queue the
# job is parked (state 'paused', in order); on a paused worker it is left waiting.
# Returns {1, attempt, max attempts} when claimed, {2, record...} when it
# expired, else {0, reason}.
CLAIM = _COUNT_UNTIMED_FAILURE + """
local cur = redis.call('HMGET', KEYS[1], 'state', 'gen', 'attempts_made', 'lock_ms',
                      'max_attempts', 'runnable_at', 'opts')
if not cur[1] then return {0, 'missing'} end
if cur[1] ~= 'waiting' then return {0, cur[1]} end
if cur[2] ~= ARGV[2] then return {0, 'superseded'} end
if redis.call('HGET', KEYS[6], 'paused') == '1' then
  redis.call('ZREM', KEYS[2], ARGV[1])
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
  redis.call('HSET', KEYS[1], 'state', 'failed', 'failed_reason', 'expired',
             'error_type', 'JobExpired', 'finished_at', now, 'error', why)
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[4], now, ARGV[1])
  local name = redis.call('HGET', KEYS[1], 'name')
  redis.call('HINCRBY', KEYS[5], 'failed', 1)
  redis.call('HINCRBY', KEYS[5], 'failed|' .. name, 1)
  redis.call('HINCRBY', KEYS[5], 'expired', 1)
  count_untimed_failure(KEYS[9], ARGV[6])
  local record = redis.call('HGETALL', KEYS[1])
  table.insert(record, 1, 2)
  return record
end
local attempt = tonumber(cur[3]) + 1
redis.call('HSET', KEYS[1], 'state', 'active', 'owner', ARGV[3],
           'processed_at', now, 'attempts_made', attempt)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], now + tonumber(cur[4]), ARGV[1])
return {1, attempt, tonumber(cur[5])}
"""

# KEYS: job, job logs, active, target index (completed or failed), stats,
#       this minute's stats bucket, the worker's hash
# ARGV: job id, owner token, now, target state, base, bucket ttl ms,
#       then field/value pairs to store (result, or error details)
# The record's keep_<state> says what to retain: -1 every finished record,
# 0 none (this one is deleted), N the newest N.
# Returns the record as a flat list (empty if it was deleted), or 0 when the
# caller no longer owns the job (it was recovered as stalled and belongs to
# another run): nothing is written then.
FINISH = """
local cur = redis.call('HMGET', KEYS[1], 'state', 'owner', 'processed_at', 'runnable_at',
                      'keep_' .. ARGV[4], 'attempts_made', 'name')
if cur[1] ~= 'active' or cur[2] ~= ARGV[2] then return 0 end
local id, now, state, base = ARGV[1], tonumber(ARGV[3]), ARGV[4], ARGV[5]
if #ARGV > 6 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 7))
end
redis.call('HSET', KEYS[1], 'state', state, 'finished_at', now)
redis.call('HDEL', KEYS[1], 'owner')
redis.call('ZREM', KEYS[3], id)
redis.call('HINCRBY', KEYS[5], state, 1)
if tonumber(cur[6]) > 1 then
  -- feeds the retry success rate: outcomes of jobs that needed a retry
  redis.call('HINCRBY', KEYS[5], 'retried_' .. state, 1)
end
local started = tonumber(cur[3])
local took = now - started
redis.call('HINCRBY', KEYS[5], state .. '|' .. cur[7], 1)
local bound = '+Inf'
for _, le in ipairs({5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
                     300000}) do
  if took <= le then bound = tostring(le) break end
end
redis.call('HINCRBY', KEYS[5], 'duration|' .. cur[7] .. '|' .. bound, 1)
redis.call('HINCRBY', KEYS[5], 'duration_sum|' .. cur[7], took)
redis.call('HINCRBY', KEYS[6], state, 1)
redis.call('HINCRBY', KEYS[6], 'proc_ms', took)
redis.call('HINCRBY', KEYS[6], 'wait_ms', started - tonumber(cur[4]))
redis.call('PEXPIRE', KEYS[6], ARGV[6])
if redis.call('EXISTS', KEYS[7]) == 1 then
  redis.call('HINCRBY', KEYS[7], state == 'completed' and 'processed' or 'failed', 1)
end
local record = redis.call('HGETALL', KEYS[1])
local keep = tonumber(cur[5]) or -1
if keep == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return record
end
redis.call('ZADD', KEYS[4], now, id)
if keep > 0 then
  local excess = redis.call('ZCARD', KEYS[4]) - keep
  if excess > 0 then
    for _, old in ipairs(redis.call('ZRANGE', KEYS[4], 0, excess - 1)) do
      redis.call('DEL', base .. 'job:' .. old, base .. 'job:' .. old .. ':logs')
    end
    redis.call('ZREMRANGEBYRANK', KEYS[4], 0, excess - 1)
  end
end
return record
"""

# KEYS: job, active, delayed, waiting, stats
# ARGV: job id, owner token, now, due, new generation, broker key, message,
#       error type, error message
# A failed attempt that will be retried: back to delayed (or waiting when due
# now) with a new generation and message; records retry statistics.
RETRY = """
local cur = redis.call('HMGET', KEYS[1], 'state', 'owner', 'attempts_made', 'name')
if cur[1] ~= 'active' or cur[2] ~= ARGV[2] then return 0 end
local id, now, due = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'gen', ARGV[5], 'error_type', ARGV[8], 'error', ARGV[9])
redis.call('HDEL', KEYS[1], 'owner')
redis.call('ZREM', KEYS[2], id)
if due > now then
  redis.call('HSET', KEYS[1], 'state', 'delayed', 'runnable_at', due,
             'msg', ARGV[7], 'broker_key', ARGV[6])
  redis.call('ZADD', KEYS[3], due, id)
else
  redis.call('HSET', KEYS[1], 'state', 'waiting', 'runnable_at', now)
  redis.call('ZADD', KEYS[4], now, id)
  redis.call('LPUSH', ARGV[6], ARGV[7])
end
redis.call('HINCRBY', KEYS[5], 'retries', 1)
redis.call('HINCRBY', KEYS[5], 'retries|' .. cur[4], 1)
redis.call('HINCRBY', KEYS[5], 'retry_attempt:' .. cur[3], 1)
redis.call('HINCRBY', KEYS[5], 'retry_error:' .. ARGV[8], 1)
redis.call('HINCRBY', KEYS[5], 'retry_delay_ms', due - now)
return 1
"""

# KEYS: delayed, waiting
# ARGV: base, now, batch limit
# Moves due delayed jobs to waiting and pushes their stored messages.
# Returns {moved, next due time or -1}.
PROMOTE = """
local base, now = ARGV[1], tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do
  local jkey = base .. 'job:' .. id
  local rec = redis.call('HMGET', jkey, 'state', 'msg', 'broker_key')
  redis.call('ZREM', KEYS[1], id)
  if rec[1] == 'delayed' and rec[2] then
    redis.call('HSET', jkey, 'state', 'waiting')
    redis.call('HDEL', jkey, 'msg', 'broker_key')
    redis.call('ZADD', KEYS[2], now, id)
    redis.call('LPUSH', rec[3], rec[2])
  end
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, tonumber(nxt[2]) or -1}
"""

# KEYS: job, active, waiting, failed, stats, this minute's stats bucket
# ARGV: job id, now, mode ('stalled': the lock expired; 'lost': the owner's
#       process died), owner token (for 'lost'), expected generation,
#       new generation, broker key, message, bucket ttl ms
# Returns {1} when returned to waiting with a fresh message, {2, record...}
# when it stalled more than max_stalled times and failed, else {0}.
RECOVER = _COUNT_UNTIMED_FAILURE + """
local cur = redis.call('HMGET', KEYS[1], 'state', 'owner', 'gen', 'stalled_count', 'max_stalled',
                      'name')
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
redis.call('HINCRBY', KEYS[5], 'stalled', 1)
redis.call('HINCRBY', KEYS[5], 'stalled|' .. cur[6], 1)
if count > tonumber(cur[5]) then
  redis.call('HSET', KEYS[1], 'state', 'failed', 'failed_reason', 'stalled',
             'error_type', 'JobStalled', 'finished_at', now,
             'error', 'job stalled more than maxStalledCount times (worker lost)')
  redis.call('ZADD', KEYS[4], now, id)
  redis.call('HINCRBY', KEYS[5], 'failed', 1)
  redis.call('HINCRBY', KEYS[5], 'failed|' .. cur[6], 1)
  count_untimed_failure(KEYS[6], ARGV[9])
  local record = redis.call('HGETALL', KEYS[1])
  table.insert(record, 1, 2)
  return record
end
redis.call('HSET', KEYS[1], 'state', 'waiting', 'gen', ARGV[6], 'runnable_at', now)
redis.call('ZADD', KEYS[3], now, id)
redis.call('LPUSH', ARGV[7], ARGV[8])
return {1}
"""

# KEYS: active
# ARGV: base, now, then pairs of job id and owner token
# Renews the locks of the jobs this worker runs right now. Returns how many.
EXTEND_LOCKS = """
local base, now, renewed = ARGV[1], tonumber(ARGV[2]), 0
for i = 3, #ARGV, 2 do
  local rec = redis.call('HMGET', base .. 'job:' .. ARGV[i], 'owner', 'lock_ms')
  if rec[1] == ARGV[i + 1] then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(rec[2]), ARGV[i])
    renewed = renewed + 1
  end
end
return renewed
"""

# KEYS: job, waiting, delayed, cancelled, paused
# ARGV: job id, now
# Returns {1, 'cancelled'}, {1, 'requested'} for an active job (cooperative),
# or {0, state} when there is nothing to cancel.
CANCEL = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {0, 'missing'} end
if state == 'waiting' or state == 'delayed' or state == 'paused' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', ARGV[2])
  redis.call('HDEL', KEYS[1], 'msg', 'broker_key')
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
  return {1, 'cancelled'}
end
if state == 'active' then
  redis.call('HSET', KEYS[1], 'cancel_requested', 1)
  return {1, 'requested'}
end
return {0, state}
"""

# KEYS: job, waiting
# ARGV: job id, priority, expected generation, new generation, broker key, message, now
# Supersedes the job's message: the old one becomes a no-op at claim.
# Returns {1} or {0, reason}.
CHANGE_PRIORITY = """
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
"""

# KEYS: job, waiting
# ARGV: job id, expected generation, new generation, broker key, message, now
# A waiting job whose message a paused worker handed back, a dead worker
# reserved, or that vanished on its way to a worker: publish a fresh message
# (any copy of the old one becomes a no-op at claim).
REPUBLISH = """
local cur = redis.call('HMGET', KEYS[1], 'state', 'gen')
if cur[1] ~= 'waiting' or cur[2] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'gen', ARGV[3])
redis.call('LPUSH', ARGV[4], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
return 1
"""

# KEYS: a finished-state index (completed or failed)
# ARGV: base, cutoff time, limit
# Deletes up to ``limit`` records that entered the state before the cutoff.
CLEAN = """
local base = ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('DEL', base .. 'job:' .. id, base .. 'job:' .. id .. ':logs')
  redis.call('ZREM', KEYS[1], id)
end
return #ids
"""

# KEYS: queue meta, paused index, waiting
# ARGV: base, now, then per job: id, expected generation, broker key, message
# Releases parked jobs of a queue being resumed: each gets a new generation
# and its message is pushed at the consumer end, so parked jobs run next, in
# order (the caller passes them newest first). The paused flag is cleared in
# the same script once nothing is parked, so no job can be parked after its
# release and stay behind. Their scores go below every waiting job's, since
# they are taken first (the order of the waiting index, see queues.store.broker).
# Returns {released, 1 if the queue now runs}.
RELEASE = """
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
"""
