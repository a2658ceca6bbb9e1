-- An example of the settings an operator uses most. Durations are in seconds.
-- Validate it with: rsp --check config/example.lua
-- The README lists every setting with its default.

-- Worker processes; default: the number of available CPUs. --workers overrides it.
workers = 2

-- Defaults for every service below; each service may override them.
algorithm = "round_robin"            -- or "least_connections"
timeouts = { connect = 5, idle = 300, drain = 30, queue = 10 }
access_log = false                   -- true logs one line per finished connection

-- /metrics, /healthz and /readyz; false turns the endpoint off.
metrics = "127.0.0.1:9100"

-- Lua computes values: BACKEND_PORTS="8081,8082" adds one web backend per port.
local web_backends = {}
for port in string.gmatch(os.getenv("BACKEND_PORTS") or "8081,8082", "%d+") do
  web_backends[#web_backends + 1] = "127.0.0.1:" .. port
end
-- A backup takes connections only while no other web backend is up.
web_backends[#web_backends + 1] = { address = "127.0.0.1:8089", backup = true }

services = {
  web = {
    listen = "127.0.0.1:8000",
    backends = web_backends,
    health_check = { interval = 2, timeout = 1, rise = 2, fall = 3 },
    max_connections_per_client = 100,
    -- Backends see the client's address in a PROXY protocol v2 header.
    proxy_protocol = "v2",
  },
  redis = {
    listen = "127.0.0.1:6380",
    algorithm = "least_connections",
    backends = {
      { address = "127.0.0.1:6379", weight = 2, max_connections = 500 },
      "localhost:6381",               -- hostnames are resolved at connect time
    },
    -- A check passes when the reply to PING starts with +PONG.
    health_check = { send = "PING\r\n", expect = "+PONG" },
    max_connections = 800,            -- more wait up to timeouts.queue
    timeouts = { idle = 3600 },       -- the other timeouts come from the defaults above
  },
}
