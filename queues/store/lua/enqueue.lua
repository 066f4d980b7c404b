-- KEYS: waiting, delayed, stats, known-queues set
-- ARGV: base, now, queue, due (0: runnable now), broker key, N, then N
--       field/value pairs every job of the call shares (among them 'name'),
--       then per job: id, data JSON, trace id, task id, message
-- Returns: one flag per job: 1 created, 0 the id already existed (nothing written).
--
-- One call resolves one set of options, so what its jobs share arrives once
-- and each job costs an EXISTS and one HSET; the state index and the broker
-- list get one ZADD and one LPUSH per 1,000 jobs (LPUSH of several values
-- pushes them in order, as one LPUSH each would; Lua's unpack takes at most
-- ~8,000 values, and an error half-way would leave records without messages).
-- On a queue with limits a runnable job is held and the gate pumped (gate.lua,
-- prepended by the loader): the limits decide when its message is pushed.
local base, now, queue, bkey = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
local delayed = tonumber(ARGV[4]) > tonumber(now)
local gated = not delayed and gate_limits(base).on
local score = delayed and ARGV[4] or now
local fields = {'gen', 1, 'created_at', now, 'attempts_made', 0, 'progress', 0,
                'state', delayed and 'delayed' or 'waiting', 'runnable_at', score}
local first, name, group, priority = 7 + 2 * tonumber(ARGV[6]), nil, '', '0'
for i = 7, first - 1, 2 do
  fields[#fields + 1], fields[#fields + 2] = ARGV[i], ARGV[i + 1]
  if ARGV[i] == 'name' then name = ARGV[i + 1] end
  if ARGV[i] == 'group' then group = ARGV[i + 1] end
  if ARGV[i] == 'priority' then priority = ARGV[i + 1] end
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
    if gated then
      gate_insert(base, id, group, priority, ARGV[i + 4], bkey)
      created = created + 1
    else
      indexed[2 * pending + 1], indexed[2 * pending + 2] = score, id
      pending, created = pending + 1, created + 1
      if pending == 1000 then push() end
    end
    out[#out + 1] = 1
  end
end
if pending > 0 then push() end
if gated and created > 0 then gate_pump(base, tonumber(now), created) end
if created > 0 then
  redis.call('HINCRBY', KEYS[3], 'scheduled|' .. name, created)
  redis.call('HINCRBY', KEYS[3], 'scheduled', created)
  redis.call('HSETNX', KEYS[3], 'first_activity_ms', now)  -- queues.ops.stats windows start here
  redis.call('SADD', KEYS[4], queue)
end
return out
