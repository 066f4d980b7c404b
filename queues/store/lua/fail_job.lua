-- KEYS: none of its own: a library, not a script. The loader (queues/store/scripts.py)
--       prepends it (after note_attempt.lua, whose function it calls) to claim.lua,
--       recover.lua and finish.lua, whose keys it is passed.
-- ARGV: none; fail_job(job, id, f) takes the job's key and id, and a table f of
--       now, name (the job's), details (flat field/value list: failed_reason,
--       error_type, error, ...), stats (the stats hash), index (the failed index,
--       or false: the record is not indexed), bucket (this minute's stats
--       bucket), ttl (the bucket's, ms) and untimed (true: a failure the finish
--       script never sees, so kept out of the average times).
-- Returns: fail_job returns the job's final record, HGETALL's flat list.
--
-- The one place a job turns 'failed': the record's state and error fields, the
-- failed index, and the counters queues.ops.stats and the metrics read ('failed',
-- 'failed|<name>', this minute's 'failed' and 'untimed'). What differs between its
-- three callers stays with them: claim counts 'expired', recover counts 'stalled',
-- finish adds timings and the histogram and trims the index by keep_failed.
--
-- Why prepended source and not a Redis 7 FUNCTION library: scripts stay plain
-- EVALSHA (queues.store._Script), which loads a script the server lost (restart,
-- SCRIPT FLUSH) again by itself and works on every Redis >= 6; a function
-- library is server state that each deploy must FUNCTION LOAD before use, and two
-- versions of the code running side by side (a rolling deploy) would share one
-- library name. The cost is a few lines repeated in three cached scripts.
local function fail_job(job, id, f)
  local detail = {}
  for i = 1, #f.details, 2 do detail[f.details[i]] = f.details[i + 1] end
  note_attempt(job, f.now, detail.error_type, detail.error)
  -- the details first, so that no caller's field can overwrite state or finished_at
  local fields = {unpack(f.details)}
  local n = #fields
  fields[n + 1], fields[n + 2], fields[n + 3], fields[n + 4] = 'state', 'failed', 'finished_at', f.now
  redis.call('HSET', job, unpack(fields))
  if f.index then redis.call('ZADD', f.index, f.now, id) end
  redis.call('HINCRBY', f.stats, 'failed', 1)
  redis.call('HINCRBY', f.stats, 'failed|' .. f.name, 1)
  redis.call('HINCRBY', f.bucket, 'failed', 1)
  if f.untimed then redis.call('HINCRBY', f.bucket, 'untimed', 1) end
  redis.call('PEXPIRE', f.bucket, f.ttl)
  return redis.call('HGETALL', job)
end
