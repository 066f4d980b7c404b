-- KEYS: job, waiting, delayed, cancelled, paused
-- ARGV: job id, now, key base, stats bucket ttl ms
-- Returns: {1, 'cancelled', parents failed (JSON, flow.lua's flow_settle) or ''},
--          {1, 'requested'} for an active job (cooperative), or {0, state} when there
--          is nothing to cancel.
--
-- A job held by the queue's limits leaves the gate (gate.lua, prepended); a parent
-- waiting for its children leaves its queue's 'waiting-children' index; a child of a
-- flow is settled with its parent as 'cancelled' (flow.lua, prepended).
local rec = redis.call('HMGET', KEYS[1], 'state', 'group')
local state, group, base = rec[1], rec[2] or '', ARGV[3]
if not state then return {0, 'missing'} end
if state == 'limited' then gate_unhold(base, ARGV[1], group) end
if state == 'waiting' or state == 'delayed' or state == 'paused' or state == 'limited'
    or state == 'waiting-children' then
  gate_left(base, ARGV[1], group)
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
  redis.call('ZREM', base .. 'waiting-children', ARGV[1])
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', ARGV[2])
  redis.call('HDEL', KEYS[1], 'msg', 'broker_key')
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
  local failed = flow_settle(KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[4], 'cancelled',
                             'JobCancelled', 'cancelled')
  return {1, 'cancelled', #failed > 0 and cjson.encode(failed) or ''}
end
if state == 'active' then
  redis.call('HSET', KEYS[1], 'cancel_requested', 1)
  return {1, 'requested'}
end
return {0, state}
