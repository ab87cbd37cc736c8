-- scale_load.lua — wrk script that loads a fixed number of distinct keys (benchmarks/bench_scale.py).
--
-- Each wrk thread writes "<prefix>-<thread>-<i>" for i = 0, 1, ... quota-1, then again from 0
-- (overwrites: the key count never exceeds threads x quota). wrk's -d or SIGINT ends the run;
-- bench_scale.py sends SIGINT once the leader holds every key (wrk prints its summary then).
-- done() prints one line: BENCH_RESULT {"requests":..,"rps":..,"p99_ms":..,"max_ms":..,...}

local quota = tonumber(os.getenv("BENCH_KEYS_PER_THREAD") or "1000")
local value_bytes = tonumber(os.getenv("BENCH_VALUE_BYTES") or "100")
local key_prefix = os.getenv("BENCH_KEY_PREFIX") or "scale"

local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
end

local n = 0
local body = string.rep("v", value_bytes)
local headers = { ["Content-Type"] = "application/octet-stream" }

function request()
  local i = n % quota
  n = n + 1
  return wrk.format("PUT", "/v1/kv/" .. key_prefix .. "-" .. tid .. "-" .. i, headers, body)
end

-- done(): the shared BENCH_RESULT line (bench_result.lua, beside this script)
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "bench_result.lua")
