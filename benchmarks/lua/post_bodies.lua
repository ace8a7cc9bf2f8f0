-- POST pre-rendered bodies in turn; print one parseable summary line when the run ends.
--
--   wrk -t2 -c16 -d15s -s post_bodies.lua URL -- BODIES_FILE CONTENT_TYPE [ACCEPT]
--
-- ACCEPT, when given, is sent as the Accept header (an Arrow answer, say); without it the
-- server answers in its default format. BODIES_FILE holds every body, each as "<byte length>\n<body>" (benchmarks/request_bodies.py
-- writes it). Each wrk thread reads it once at init and formats every request up front, so
-- a request costs wrk no more than picking the next prepared string.

local requests = {}
local position = 0
local thread_count = 0

local function read_bodies(path)
   local file = assert(io.open(path, "rb"), "cannot open " .. tostring(path))
   local content = file:read("*a")
   file:close()
   local bodies = {}
   local start = 1
   while start <= #content do
      local newline = assert(string.find(content, "\n", start, true), "truncated bodies file")
      local length = assert(tonumber(string.sub(content, start, newline - 1)), "bad length")
      bodies[#bodies + 1] = string.sub(content, newline + 1, newline + length)
      start = newline + length + 1
   end
   assert(#bodies > 0, "no bodies in " .. path)
   return bodies
end

function setup(thread)
   -- Threads start at different customers, so two threads do not send the same one in step.
   thread:set("thread_number", thread_count)
   thread_count = thread_count + 1
end

function init(args)
   -- Every server gets the client key; only ours checks it (production configuration).
   local headers = { ["Content-Type"] = args[2] or "application/json", ["X-API-Key"] = "bench-key" }
   if args[3] and args[3] ~= "" then
      headers["Accept"] = args[3]
   end
   for index, body in ipairs(read_bodies(args[1])) do
      requests[index] = wrk.format("POST", nil, headers, body)
   end
   position = ((thread_number or 0) * 997) % #requests
end

function request()
   position = position % #requests + 1
   return requests[position]
end

function done(summary, latency, _)
   local errors = summary.errors
   io.write(string.format(
      "WRK_RESULT {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d,"
         .. "\"connect_errors\":%d,\"read_errors\":%d,\"write_errors\":%d,"
         .. "\"status_errors\":%d,\"timeouts\":%d,"
         .. "\"latency_mean_us\":%.1f,\"latency_max_us\":%d,"
         .. "\"latency_p50_us\":%d,\"latency_p90_us\":%d,\"latency_p99_us\":%d}\n",
      summary.requests, summary.duration, summary.bytes,
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      latency.mean, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99)
   ))
end
