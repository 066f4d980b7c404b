-- KEYS: none of its own: a library, not a script. The loader (queues/store/scripts.py)
--       prepends it, after fail_job.lua and gate.lua whose functions it calls, to the
--       scripts that end a job (finish, claim, recover, cancel) and to enqueue_flow.
-- ARGV: none; flow_settle(job key, id, now, bucket ttl ms, outcome, a, b) takes a job
--       that just ended: outcome 'completed' (a: its result JSON), 'failed' or
--       'cancelled' (a: error type, b: error).
-- Returns: flow_settle returns the parents it failed, each {queue, id, final record
--          as HGETALL's flat list}, for the caller to dead-letter like the job itself.
--
-- Parent-child flows (queues.jobs.flows). A parent waits in state 'waiting-children'
-- (its queue's 'waiting-children' index) with its message in its record and its
-- 'pending' count of children that have not ended. A child's record names its parent
-- ('parent': the parent's job key) and what its failure does ('parent_policy'). The
-- script that ends a child settles it here, so the counts change in the same
-- transition that ends the child and the last child lets the parent out, once:
-- - completed: its result goes to the parent's ':results' hash (by child id);
-- - failed or cancelled, policy 'ignore': its error goes to ':failures' and it counts
--   as done; 'remove': it only counts as done; 'fail_parent' (the default): the
--   parent fails at once with the child's error (and its own parent is settled in
--   turn); its other children run on, and what they do no longer reaches it.
-- The parent's children are listed in its ':children' list ('<queue>/<id>' each).

-- The key base of a job key (a job key is <base>job:<id>).
local function flow_base(job_key, id)
  return string.sub(job_key, 1, #job_key - #id - 4)
end

-- Every child ended: the parent is runnable now (held instead on a queue with limits).
local function flow_release(pkey, pid, now)
  local pbase = flow_base(pkey, pid)
  local rec = redis.call('HMGET', pkey, 'msg', 'broker_key', 'group', 'priority')
  redis.call('ZREM', pbase .. 'waiting-children', pid)
  redis.call('HSET', pkey, 'runnable_at', now)
  if gate_limits(pbase).on then
    gate_insert(pbase, pid, rec[3] or '', rec[4], rec[1], rec[2])
    gate_pump(pbase, now, 1)
  else
    redis.call('HSET', pkey, 'state', 'waiting')
    redis.call('HDEL', pkey, 'msg', 'broker_key')
    redis.call('ZADD', pbase .. 'waiting', now, pid)
    redis.call('LPUSH', rec[2], rec[1])
  end
end

local function flow_settle(jkey, id, now, ttl, outcome, a, b)
  local rec = redis.call('HMGET', jkey, 'parent', 'parent_policy', 'queue')
  local pkey = rec[1]
  if not pkey then return {} end
  local parent = redis.call('HMGET', pkey, 'state', 'id', 'name', 'queue')
  if parent[1] ~= 'waiting-children' then return {} end  -- failed or cancelled before
  local pid = parent[2]
  if outcome == 'completed' then
    redis.call('HSET', pkey .. ':results', id, a)
  elseif rec[2] == 'ignore' then
    redis.call('HSET', pkey .. ':failures', id,
               cjson.encode({state = outcome, error_type = a or '', error = b or ''}))
  elseif rec[2] ~= 'remove' then  -- fail_parent
    local pbase = flow_base(pkey, pid)
    local err = 'child ' .. rec[3] .. '/' .. id .. ' ' .. outcome .. ': ' .. (a or '')
                .. ((b and b ~= '') and (': ' .. b) or '')
    redis.call('ZREM', pbase .. 'waiting-children', pid)
    redis.call('HDEL', pkey, 'msg', 'broker_key')
    local record = fail_job(pkey, pid, {
      now = now, name = parent[3], stats = pbase .. 'stats', index = pbase .. 'failed',
      bucket = pbase .. 'stats:m:' .. math.floor(now / 60000), ttl = ttl, untimed = true,
      details = {'failed_reason', 'child_failed', 'error_type', 'ChildFailed', 'error', err}})
    local failed = {{parent[4], pid, record}}
    for _, more in ipairs(flow_settle(pkey, pid, now, ttl, 'failed', 'ChildFailed', err)) do
      failed[#failed + 1] = more
    end
    return failed
  end
  if redis.call('HINCRBY', pkey, 'pending', -1) <= 0 then flow_release(pkey, pid, now) end
  return {}
end

-- The parents a settle failed, as one more field/value pair for a flat record reply
-- (queues.jobs.failures.failed_for_good reads 'flow_failed').
local function flow_reply(record, failed)
  if #failed > 0 then
    record[#record + 1] = 'flow_failed'
    record[#record + 1] = cjson.encode(failed)
  end
  return record
end
