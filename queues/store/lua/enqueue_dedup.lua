-- KEYS: waiting, delayed, stats, known-queues set, dedup key
-- ARGV: base, now, queue, due (0: runnable now), broker key, mode ('throttle' or
--       'debounce'), ttl ms, then the debounce replacement ('' four times for none):
--       delayed job id, its generation (the message's), the message's broker key,
--       the message; then N, N field/value pairs the job shares (as in
--       enqueue.lua, among them 'name'), then the one job: id, data JSON, trace id,
--       task id, message
-- Returns: {status, job id}: 1 created (the key now names it); 0 an existing job,
--   untouched (throttled, or the given job id already existed); 2 the delayed job
--   debounced (data and stored message replaced, due again, key ttl restarted);
--   -1 nothing written: debounce needs a message for the named delayed job (or the
--   one given is of another generation): build it and call again.
--
-- enqueue.lua's record for one job, behind a dedup key. A debounce rewrites a job
-- only while it is delayed and never ran (attempts_made 0): its message of the
-- current generation is then only in its record (promote.lua pushes it), never in
-- the broker, so the replacement keeps that generation. Debounces racing on one
-- key therefore all apply, in order; only another transition (a priority change)
-- makes a prebuilt replacement stale.
local base, now, queue, due, bkey = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local mode, ttl = ARGV[6], ARGV[7]
local first = 13 + 2 * tonumber(ARGV[12])  -- the job's id
local id, data = ARGV[first], ARGV[first + 1]
local current = redis.call('GET', KEYS[5])
if current then
  local ckey = base .. 'job:' .. current
  local cur = redis.call('HMGET', ckey, 'state', 'gen', 'attempts_made')
  if mode == 'throttle' and cur[1] then return {0, current} end
  if mode == 'debounce' and cur[1] == 'delayed' and cur[3] == '0' then
    if ARGV[8] ~= current or ARGV[9] ~= cur[2] then return {-1, current} end
    redis.call('HSET', ckey, 'data', data, 'broker_key', ARGV[10], 'msg', ARGV[11],
               'runnable_at', due)
    redis.call('ZADD', KEYS[2], due, current)
    redis.call('PEXPIRE', KEYS[5], ttl)
    return {2, current}
  end
end
local jkey = base .. 'job:' .. id
if redis.call('EXISTS', jkey) == 1 then return {0, id} end
local delayed = tonumber(due) > tonumber(now)
local score = delayed and due or now
local fields = {'gen', 1, 'created_at', now, 'attempts_made', 0, 'progress', 0,
                'state', delayed and 'delayed' or 'waiting', 'runnable_at', score,
                'id', id, 'data', data, 'trace_id', ARGV[first + 2], 'task_id', ARGV[first + 3]}
local name, group, priority = nil, '', '0'
for i = 13, first - 1, 2 do
  fields[#fields + 1], fields[#fields + 2] = ARGV[i], ARGV[i + 1]
  if ARGV[i] == 'name' then name = ARGV[i + 1] end
  if ARGV[i] == 'group' then group = ARGV[i + 1] end
  if ARGV[i] == 'priority' then priority = ARGV[i + 1] end
end
if delayed then
  fields[#fields + 1], fields[#fields + 2] = 'msg', ARGV[first + 4]
  fields[#fields + 1], fields[#fields + 2] = 'broker_key', bkey
end
redis.call('HSET', jkey, unpack(fields))
if not delayed and gate_limits(base).on then  -- held by the queue's limits (gate.lua)
  gate_insert(base, id, group, priority, ARGV[first + 4], bkey)
  gate_pump(base, tonumber(now), 1)
else
  redis.call('ZADD', delayed and KEYS[2] or KEYS[1], score, id)
  if not delayed then redis.call('LPUSH', bkey, ARGV[first + 4]) end
end
redis.call('HINCRBY', KEYS[3], 'scheduled|' .. name, 1)
redis.call('HINCRBY', KEYS[3], 'scheduled', 1)
redis.call('HSETNX', KEYS[3], 'first_activity_ms', now)  -- queues.ops.stats windows start here
redis.call('SADD', KEYS[4], queue)
redis.call('SET', KEYS[5], id, 'PX', ttl)
return {1, id}
