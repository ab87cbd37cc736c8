-- kv_load.lua — wrk script for raftkv's benchmark (benchmarks/bench_node.py).
--
-- PUT mode: every request writes a fresh key "<prefix>-<thread>-<n>" with a fixed value.
-- GET mode: requests cycle over "<prefix>-<thread>-<0..keys-1>" (written beforehand).
-- Settings come from environment variables: BENCH_MODE (put|get), BENCH_VALUE_BYTES (100),
-- BENCH_KEYS (1000), BENCH_KEY_PREFIX (bench), BENCH_QUERY (e.g. "?consistency=stale").
-- done() prints one line: BENCH_RESULT {"requests":..,"rps":..,"p50_ms":..,"p99_ms":..,...}

local mode = os.getenv("BENCH_MODE") or "put"
local value_bytes = tonumber(os.getenv("BENCH_VALUE_BYTES") or "100")
local keys = tonumber(os.getenv("BENCH_KEYS") or "1000")
local key_prefix = os.getenv("BENCH_KEY_PREFIX") or "bench"
local query = os.getenv("BENCH_QUERY") or ""

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

local n = 0
local body = string.rep("v", value_bytes)
local headers = { ["Content-Type"] = "application/octet-stream" }

function request()
  local i = n
  n = n + 1
  if mode == "get" then
    i = i % keys
    return wrk.format("GET", "/v1/kv/" .. key_prefix .. "-" .. tid .. "-" .. i .. query)
  end
  return wrk.format("PUT", "/v1/kv/" .. key_prefix .. "-" .. tid .. "-" .. i .. query,
    headers, body)
end

-- done(): the shared BENCH_RESULT line (bench_result.lua, beside this script)
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "bench_result.lua")
