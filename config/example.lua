-- A documented example of every setting. Durations are in seconds.
-- Validate it with: rsp --check config/example.lua

-- Worker processes; default: the number of available CPUs. --workers overrides it.
workers = 2

-- Defaults for every service below; each service may override them.
algorithm = "round_robin"            -- or "least_connections"
timeouts = { connect = 5, idle = 300, drain = 30 }
access_log = false                   -- true logs one line per finished connection

-- /metrics, /healthz and /readyz; false turns the endpoint off.
metrics = "127.0.0.1:9100"

-- Lua computes values: BACKEND_PORTS="8081,8082" adds one web backend per port.
local web_backends = {}
for port in string.gmatch(os.getenv("BACKEND_PORTS") or "8081,8082", "%d+") do
  web_backends[#web_backends + 1] = "127.0.0.1:" .. port
end

services = {
  web = {
    listen = "127.0.0.1:8000",
    backends = web_backends,
  },
  redis = {
    listen = "127.0.0.1:6380",
    algorithm = "least_connections",
    backends = {
      { address = "127.0.0.1:6379", weight = 2 },
      "localhost:6381",               -- hostnames are resolved at connect time
    },
    timeouts = { idle = 3600 },       -- the other timeouts come from the defaults above
  },
}
