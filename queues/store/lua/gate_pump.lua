-- KEYS: none (every key derives from the key base)
-- ARGV: key base, now, budget
-- Returns: {dispatched, when to pump again (ms) or -1}.
--
-- A worker's 'gate' duty: dispatch the held jobs the limits let out now (gate.lua,
-- prepended), and learn when a rate window reopens.
local sent, wake = gate_pump(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
return {sent, wake}
