-- etcd_load.lua — the same load as kv_load.lua, through etcd's v3 JSON gateway (bench_node.py).
--
-- PUT mode: POST /v3/kv/put {"key": b64("<prefix>-<thread>-<n>"), "value": b64(value)}, a fresh
-- key per request. GET mode: POST /v3/kv/range {"key": b64("<prefix>-<thread>-<i>")} cycling
-- over keys written beforehand (linearizable: etcd's default, serializable=false).
-- Settings: BENCH_MODE (put|get), BENCH_VALUE_BYTES (100), BENCH_KEYS (1000), BENCH_KEY_PREFIX.
-- done() prints one line: BENCH_RESULT {...} (same fields as kv_load.lua).

local mode = os.getenv("BENCH_MODE") or "put"
local value_bytes = tonumber(os.getenv("BENCH_VALUE_BYTES") or "100")
local keys = tonumber(os.getenv("BENCH_KEYS") or "1000")
local key_prefix = os.getenv("BENCH_KEY_PREFIX") or "bench"

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function b64(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
end

local n = 0
local value64 = b64(string.rep("v", value_bytes))
local headers = { ["Content-Type"] = "application/json" }

function request()
  local i = n
  n = n + 1
  if mode == "get" then
    i = i % keys
    local body = '{"key":"' .. b64(key_prefix .. "-" .. tid .. "-" .. i) .. '"}'
    return wrk.format("POST", "/v3/kv/range", headers, body)
  end
  local body = '{"key":"' .. b64(key_prefix .. "-" .. tid .. "-" .. i) .. '","value":"' ..
    value64 .. '"}'
  return wrk.format("POST", "/v3/kv/put", headers, body)
end

-- done(): the shared BENCH_RESULT line (bench_result.lua, beside this script)
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "bench_result.lua")
