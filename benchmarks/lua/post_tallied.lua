-- POST pre-rendered bodies with a client key; tally every answer by status and model version.
--
--   wrk -t2 -c16 -d30s -s post_tallied.lua URL -- BODIES_FILE CONTENT_TYPE API_KEY
--
-- The bodies file is the one post_bodies.lua reads ("<byte length>\n<body>" records) and the
-- WRK_RESULT line is the same, so benchmarks/wrk.py's WrkResult parses it. One more line,
-- WRK_TALLY, counts the answers by HTTP status and by the "model_version" they name: the
-- load script (benchmarks/load.py) uses it to prove that answers came from every version.

local requests = {}
local position = 0
local thread_count = 0
local threads = {}

statuses = {}
versions = {}

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
   thread:set("thread_number", thread_count)
   thread_count = thread_count + 1
   threads[#threads + 1] = thread
end

function init(args)
   local headers = {
      ["Content-Type"] = args[2] or "application/json",
      ["X-API-Key"] = args[3] or "",
   }
   for index, body in ipairs(read_bodies(args[1])) do
      requests[index] = wrk.format("POST", nil, headers, body)
   end
   position = ((thread_number or 0) * 997) % #requests
end

function request()
   position = position % #requests + 1
   return requests[position]
end

function response(status, _, body)
   local code = tostring(status)
   statuses[code] = (statuses[code] or 0) + 1
   local version = body and string.match(body, '"model_version":"([^"]*)"') or "none"
   versions[version] = (versions[version] or 0) + 1
end

local function merge(into, counts)
   for key, count in pairs(counts or {}) do
      into[key] = (into[key] or 0) + count
   end
end

local function json_counts(counts)
   local parts = {}
   for key, count in pairs(counts) do
      parts[#parts + 1] = string.format("%q:%d", key, count)
   end
   return "{" .. table.concat(parts, ",") .. "}"
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
   local all_statuses, all_versions = {}, {}
   for _, thread in ipairs(threads) do
      merge(all_statuses, thread:get("statuses"))
      merge(all_versions, thread:get("versions"))
   end
   io.write(string.format(
      "WRK_TALLY {\"statuses\":%s,\"versions\":%s}\n",
      json_counts(all_statuses), json_counts(all_versions)
   ))
end
