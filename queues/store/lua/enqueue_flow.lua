-- KEYS: known-queues set
-- ARGV: now, then per job of the flow (parents before their children) 8 values: its
--       queue's key base, its id, its record fields (a JSON object of strings, with
--       'queue', 'name' and, for a child, 'parent' and 'parent_policy'), its message,
--       its broker key, its number of children (0: a leaf), its due time (0: now), and
--       its parent's job key ('' for the root)
-- Returns: {1} when the whole flow is recorded, or {0, queue key base, id} when a job
--          of that id exists (nothing is written then).
--
-- A flow is recorded in one script (queues.jobs.flows): every parent waits for its
-- children in state 'waiting-children' with its message kept in its record (flow.lua
-- lets it out when its last child ends), and every leaf is runnable or delayed as
-- enqueue.lua would make it (held instead on a queue with limits, gate.lua).
local now, count = ARGV[1], (#ARGV - 1) / 8
for n = 0, count - 1 do
  local i = 2 + n * 8
  if redis.call('EXISTS', ARGV[i] .. 'job:' .. ARGV[i + 1]) == 1 then
    return {0, ARGV[i], ARGV[i + 1]}
  end
end
local pumped = {}
for n = 0, count - 1 do
  local i = 2 + n * 8
  local base, id, msg, bkey = ARGV[i], ARGV[i + 1], ARGV[i + 3], ARGV[i + 4]
  local children, due, parent = tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6]), ARGV[i + 7]
  local jkey = base .. 'job:' .. id
  local fields = cjson.decode(ARGV[i + 2])
  local flat = {'gen', 1, 'created_at', now, 'attempts_made', 0, 'progress', 0, 'id', id}
  for field, value in pairs(fields) do
    flat[#flat + 1], flat[#flat + 2] = field, value
  end
  redis.call('HSET', jkey, unpack(flat))
  if parent ~= '' then
    redis.call('RPUSH', parent .. ':children', fields.queue .. '/' .. id)
  end
  if children > 0 then
    redis.call('HSET', jkey, 'state', 'waiting-children', 'pending', children,
               'runnable_at', now, 'msg', msg, 'broker_key', bkey)
    redis.call('ZADD', base .. 'waiting-children', now, id)
  elseif due > tonumber(now) then
    redis.call('HSET', jkey, 'state', 'delayed', 'runnable_at', due, 'msg', msg,
               'broker_key', bkey)
    redis.call('ZADD', base .. 'delayed', due, id)
  elseif gate_limits(base).on then
    redis.call('HSET', jkey, 'runnable_at', now)
    gate_insert(base, id, fields.group or '', fields.priority, msg, bkey)
    pumped[base] = true
  else
    redis.call('HSET', jkey, 'state', 'waiting', 'runnable_at', now)
    redis.call('ZADD', base .. 'waiting', now, id)
    redis.call('LPUSH', bkey, msg)
  end
  redis.call('HINCRBY', base .. 'stats', 'scheduled|' .. fields.name, 1)
  redis.call('HINCRBY', base .. 'stats', 'scheduled', 1)
  redis.call('HSETNX', base .. 'stats', 'first_activity_ms', now)
  redis.call('SADD', KEYS[1], fields.queue)
end
for base in pairs(pumped) do gate_pump(base, tonumber(now), count) end
return {1}
