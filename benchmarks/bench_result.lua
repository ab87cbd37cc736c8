-- bench_result.lua — the one result line of every wrk script in benchmarks/ (kv_load.lua,
-- scale_load.lua, etcd_load.lua load it with dofile); the Python benchmarks parse it:
-- BENCH_RESULT {"requests":..,"seconds":..,"rps":..,"p50_ms":..,"p99_ms":..,"max_ms":..,
--               "errors_status":..,"errors_socket":..,"timeouts":..}

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,' ..
    '"max_ms":%.3f,"errors_status":%d,"errors_socket":%d,"timeouts":%d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect + e.read + e.write, e.timeout))
end
