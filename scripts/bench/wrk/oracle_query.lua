-- wrk script: POST pre-signed oracle queries, each body used at most once (every body carries its
-- own nonce; a replay would be answered 409 NonceReplayed).
--
--   wrk -t2 -c32 -d15s --latency -s scripts/bench/wrk/oracle_query.lua http://127.0.0.1:PORT -- BODIES_FILE 2
--
-- BODIES_FILE: one JSON body per line (scripts/bench/oracle_load.py writes it); the second argument is the
-- thread count (-t): thread i sends lines i, i+T, i+2T, ...  If a thread runs out of bodies it
-- starts over (the oracle then answers 409) and `wrapped` in the summary line says so.
-- done() prints one machine-readable line: "BENCH {json}" with the non-2xx count and latencies (us).

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   table.insert(threads, thread)
   counter = counter + 1
end

function init(args)
   local path = args[1]
   local nthreads = tonumber(args[2] or "1")
   bodies = {}
   local i = 0
   for line in io.lines(path) do
      if i % nthreads == id then
         bodies[#bodies + 1] = line
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
   if idx > #bodies then
      idx = 1
      wrapped = 1
   end
   return wrk.format("POST", "/v1/query", { ["Content-Type"] = "application/json" }, bodies[idx])
end

function response(status, headers, body)
   responses = responses + 1
   if status < 200 or status > 299 then
      non2xx = non2xx + 1

   end
end

function done(summary, latency, requests)
   local n, r, w = 0, 0, 0
   for _, t in ipairs(threads) do
      n = n + t:get("non2xx")
      r = r + t:get("responses")
      w = w + t:get("wrapped")
   end
   io.write(string.format(
      'BENCH {"requests": %d, "duration_us": %d, "responses": %d, "non2xx": %d, "wrapped": %d, ' ..
      '"socket_errors": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, r, n, w,
      summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
