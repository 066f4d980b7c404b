-- KEYS: none of its own: a library the loader (queues/store/scripts.py) prepends to
--       retry.lua and, before fail_job.lua, to the scripts that fail a job.
-- ARGV: none; note_attempt(job, now, error_type, error) takes the job's key.
-- Returns: nothing; note_attempt writes the record's 'attempt_log'.
--
-- Each failed attempt of a job, for its timeline on the dashboard: the record's
-- 'attempt_log' field is a JSON list of {attempt, worker, started_at, failed_at,
-- error_type, error}, the last ATTEMPTS_KEPT of them (older ones are dropped; the
-- counters in the stats hash keep the totals). It lives in the record, so it goes
-- wherever the record goes (trimmed, removed, destroyed with it).
local ATTEMPTS_KEPT = 10
local function note_attempt(job, now, error_type, err)
  local rec = redis.call('HMGET', job, 'attempt_log', 'attempts_made', 'worker', 'processed_at')
  local log = rec[1] and cjson.decode(rec[1]) or {}
  log[#log + 1] = {attempt = tonumber(rec[2]) or 0, worker = rec[3] or '',
                   started_at = tonumber(rec[4]) or 0, failed_at = now,
                   error_type = error_type or '', error = err or ''}
  while #log > ATTEMPTS_KEPT do table.remove(log, 1) end
  redis.call('HSET', job, 'attempt_log', cjson.encode(log))
end
