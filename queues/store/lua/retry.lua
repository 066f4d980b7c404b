-- KEYS: job, active, delayed, waiting, stats
-- ARGV: job id, owner token, now, due, new generation, broker key, message,
--       error type, error message, key base
-- Returns: 1, or 0 when the caller no longer owns the job (nothing is written then).
--
-- A failed attempt that will be retried: back to delayed (or waiting when due
-- now; held, on a queue with limits: gate.lua) with a new generation and message;
-- records retry statistics.
local cur = redis.call('HMGET', KEYS[1], 'state', 'owner', 'attempts_made', 'name', 'group',
                      'priority')
if cur[1] ~= 'active' or cur[2] ~= ARGV[2] then return 0 end
local id, now, due = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
note_attempt(KEYS[1], now, ARGV[8], ARGV[9])
redis.call('HSET', KEYS[1], 'gen', ARGV[5], 'error_type', ARGV[8], 'error', ARGV[9])
redis.call('HDEL', KEYS[1], 'owner')
redis.call('ZREM', KEYS[2], id)
local base = ARGV[10]
gate_left(base, id, cur[5])
if due > now then
  redis.call('HSET', KEYS[1], 'state', 'delayed', 'runnable_at', due,
             'msg', ARGV[7], 'broker_key', ARGV[6])
  redis.call('ZADD', KEYS[3], due, id)
elseif gate_limits(base).on then
  redis.call('HSET', KEYS[1], 'runnable_at', now)
  gate_insert(base, id, cur[5] or '', cur[6], ARGV[7], ARGV[6])
  gate_pump(base, now, 16)
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
