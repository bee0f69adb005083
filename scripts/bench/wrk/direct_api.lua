-- wrk script: GET the department API directly (the baseline), cycling through request paths.
--
--   wrk -t2 -c32 -d15s --latency -s scripts/bench/wrk/direct_api.lua http://127.0.0.1:PORT -- PATHS_FILE 2
--
-- PATHS_FILE: one request path per line, e.g. /companies?company_id=...&limit=100 (what the
-- oracle's relay sends). done() prints "BENCH {json}" like oracle_query.lua.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   table.insert(threads, thread)
   counter = counter + 1
end

function init(args)
   local nthreads = tonumber(args[2] or "1")
   paths = {}
   local i = 0
   for line in io.lines(args[1]) do
      if i % nthreads == id then
         paths[#paths + 1] = line
      end
      i = i + 1
   end
   idx = 0
   non2xx = 0
   responses = 0
   wrapped = 0
end

function request()
   idx = idx + 1
   if idx > #paths then
      idx = 1
   end
   return wrk.format("GET", paths[idx])
end

function response(status, headers, body)
   responses = responses + 1
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
end

function done(summary, latency, requests)
   local n, r = 0, 0
   for _, t in ipairs(threads) do
      n = n + t:get("non2xx")
      r = r + t:get("responses")
   end
   io.write(string.format(
      'BENCH {"requests": %d, "duration_us": %d, "responses": %d, "non2xx": %d, "wrapped": 0, ' ..
      '"socket_errors": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, r, n,
      summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
