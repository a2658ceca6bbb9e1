-- The quick-start config: `npm run demo` starts two demo HTTP backends on
-- 127.0.0.1:8081 and 127.0.0.1:8082, then rsp with this file.
-- Try: curl localhost:8000 (several times; the responses alternate).

-- NOTE: each worker keeps its own round-robin rotation and uses the counts of
-- the whole cluster only to break ties. With several workers the split stays
-- even, but the order that sequential requests see depends on which worker
-- accepts each one. One worker makes the alternation easy to see.
workers = 1
listen = "127.0.0.1:8000"
algorithm = "round_robin"
backends = {
  "127.0.0.1:8081",
  "127.0.0.1:8082",
}
timeouts = { connect = 2, idle = 60, drain = 5 }
metrics = "127.0.0.1:9100"
access_log = true
