-- KEYS: active
-- ARGV: base, now, then pairs of job id and owner token
-- Returns: how many locks were renewed.
--
-- Renews the locks of the jobs this worker runs right now.
local base, now, renewed = ARGV[1], tonumber(ARGV[2]), 0
for i = 3, #ARGV, 2 do
  local rec = redis.call('HMGET', base .. 'job:' .. ARGV[i], 'owner', 'lock_ms')
  if rec[1] == ARGV[i + 1] then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(rec[2]), ARGV[i])
    renewed = renewed + 1
  end
end
return renewed
