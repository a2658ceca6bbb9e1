-- The container image's default config, baked in as /etc/rsp/site.lua.
-- A file mounted at that path replaces it.
--
-- Environment:
--   RSP_BACKENDS  required: comma-separated "host:port" backends, e.g. "web1:80,web2:80".
--                 Hostnames are resolved at each connect, so service names work.
--   RSP_WORKERS   optional: worker processes. When unset, rsp starts one per CPU that
--                 os.availableParallelism() reports. Node 20 bundles libuv 1.46, which
--                 counts the CPUs the process may run on and ignores a quota such as
--                 `docker run --cpus`, so set RSP_WORKERS to match such a limit.

local backend_list = os.getenv("RSP_BACKENDS")
if backend_list == nil or backend_list:match("^%s*$") then
  error("RSP_BACKENDS is not set; set it to a comma-separated list of backends, "
    .. "e.g. RSP_BACKENDS=web1:80,web2:80", 0)
end

backends = {}
for entry in backend_list:gmatch("[^,]+") do
  local address = entry:match("^%s*(.-)%s*$")
  if address ~= "" then
    backends[#backends + 1] = address
  end
end

local workers_text = os.getenv("RSP_WORKERS")
if workers_text ~= nil and workers_text ~= "" then
  workers = math.tointeger(tonumber(workers_text))
  if workers == nil then
    error("RSP_WORKERS must be a whole number, got \"" .. workers_text .. "\"", 0)
  end
end

-- Inside a container every interface is the container's own, so listen on all of them.
listen = "0.0.0.0:8000"
metrics = "0.0.0.0:9100"

algorithm = "least_connections"
-- TCP connect checks every 2 s; rsp_backend_up shows their result.
health_check = true
-- drain stays below the 10 s that `docker stop` waits before SIGKILL (raise both together:
-- `docker stop --time`, or `stop_grace_period` in Compose).
timeouts = { connect = 5, idle = 300, drain = 8 }
