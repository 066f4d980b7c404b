-- KEYS: delayed, waiting
-- ARGV: base, now, batch limit
-- Returns: {moved, next due time or -1}.
--
-- Moves due delayed jobs to waiting and pushes their stored messages; on a queue
-- with limits they are held instead, and the gate pumped (gate.lua, prepended).
local base, now = ARGV[1], tonumber(ARGV[2])
local gated = gate_limits(base).on
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do
  local jkey = base .. 'job:' .. id
  local rec = redis.call('HMGET', jkey, 'state', 'msg', 'broker_key', 'group', 'priority')
  redis.call('ZREM', KEYS[1], id)
  if gated and rec[1] == 'delayed' and rec[2] then
    gate_insert(base, id, rec[4] or '', rec[5], rec[2], rec[3])
  elseif rec[1] == 'delayed' and rec[2] then
    redis.call('HSET', jkey, 'state', 'waiting')
    redis.call('HDEL', jkey, 'msg', 'broker_key')
    redis.call('ZADD', KEYS[2], now, id)
    redis.call('LPUSH', rec[3], rec[2])
  end
end
if gated and #due > 0 then gate_pump(base, now, #due) end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, tonumber(nxt[2]) or -1}
