"""The Lua scripts behind every job transition.

Each transition is one script, so it is atomic across any number of workers.
Job store and Celery broker share one Redis (DESIGN §4a), so a script can write
the job record *and* push the prebuilt Celery message: a job is never recorded
without a message, nor published without a record.

All values arrive as strings; times are integer milliseconds since the epoch.
Job keys are derived inside the scripts from the queue's key base
(``keys.queue_base``), which carries the queue's hash tag.
"""

from __future__ import annotations

# KEYS: waiting, delayed, stats, known-queues set
# ARGV: base, now, queue, then per job: id, due, broker key, message, record JSON
# Returns one flag per job: 1 created, 0 the id already existed (nothing written).
ENQUEUE = """
local base, now, queue = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local out, created = {}, 0
for i = 4, #ARGV, 5 do
  local id, due, bkey, msg = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3]
  local jkey = base .. 'job:' .. id
  if redis.call('EXISTS', jkey) == 1 then
    out[#out + 1] = 0
  else
    local fields = {}
    for k, v in pairs(cjson.decode(ARGV[i + 4])) do
      fields[#fields + 1] = k
      fields[#fields + 1] = v
    end
    redis.call('HSET', jkey, 'gen', 1, 'created_at', now, 'attempts_made', 0,
               'progress', 0, unpack(fields))
    if due > now then
      redis.call('HSET', jkey, 'state', 'delayed', 'runnable_at', due,
                 'msg', msg, 'broker_key', bkey)
      redis.call('ZADD', KEYS[2], due, id)
    else
      redis.call('HSET', jkey, 'state', 'waiting', 'runnable_at', now)
      redis.call('ZADD', KEYS[1], now, id)
      redis.call('LPUSH', bkey, msg)
    end
    created = created + 1
    out[#out + 1] = 1
  end
end
if created > 0 then
  redis.call('HINCRBY', KEYS[3], 'scheduled', created)
  redis.call('SADD', KEYS[4], queue)
end
return out
"""

# KEYS: job, waiting, active
# ARGV: job id, generation, owner token, now
# The lock lasts the record's lock_ms (the queue type's stalledInterval).
# Returns {1, attempt, max attempts} when claimed, else {0, reason}.
CLAIM = """
local cur = redis.call('HMGET', KEYS[1], 'state', 'gen', 'attempts_made', 'lock_ms',
                      'max_attempts')
if not cur[1] then return {0, 'missing'} end
if cur[1] ~= 'waiting' then return {0, cur[1]} end
if cur[2] ~= ARGV[2] then return {0, 'superseded'} end
local now = tonumber(ARGV[4])
local attempt = tonumber(cur[3]) + 1
redis.call('HSET', KEYS[1], 'state', 'active', 'owner', ARGV[3],
           'processed_at', now, 'attempts_made', attempt)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], now + tonumber(cur[4]), ARGV[1])
return {1, attempt, tonumber(cur[5])}
"""

# KEYS: job, job logs, active, target index (completed or failed), stats,
#       this minute's stats bucket
# ARGV: job id, owner token, now, target state, base, bucket ttl ms,
#       then field/value pairs to store (result, or error details)
# The record's keep_<state> says what to retain: -1 every finished record,
# 0 none (this one is deleted), N the newest N.
# Returns the record as a flat list (empty if it was deleted), or 0 when the
# caller no longer owns the job (it was recovered as stalled and belongs to
# another run): nothing is written then.
FINISH = """
local cur = redis.call('HMGET', KEYS[1], 'state', 'owner', 'processed_at', 'runnable_at',
                      'keep_' .. ARGV[4])
if cur[1] ~= 'active' or cur[2] ~= ARGV[2] then return 0 end
local id, now, state, base = ARGV[1], tonumber(ARGV[3]), ARGV[4], ARGV[5]
if #ARGV > 6 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 7))
end
redis.call('HSET', KEYS[1], 'state', state, 'finished_at', now)
redis.call('HDEL', KEYS[1], 'owner')
redis.call('ZREM', KEYS[3], id)
redis.call('HINCRBY', KEYS[5], state, 1)
local started = tonumber(cur[3])
redis.call('HINCRBY', KEYS[6], state, 1)
redis.call('HINCRBY', KEYS[6], 'proc_ms', now - started)
redis.call('HINCRBY', KEYS[6], 'wait_ms', started - tonumber(cur[4]))
redis.call('PEXPIRE', KEYS[6], ARGV[6])
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
