# Shared by the bench/ scripts that start their own backend (sourced).

# ports_free PORT...: exits with a message if any of the ports is listened on.
ports_free() {
  local port
  for port in "$@"; do
    [ -z "$(ss -ltnH "( sport = :$port )")" ] || { echo "port $port is in use" >&2; exit 1; }
  done
}

# ok_backend FILE WORKDIR PORT: the harness's nginx backend, one worker
# answering 200 "ok" on every path.
ok_backend() {
  cat > "$1" <<CONF
worker_processes 1;
pid $2/backend.pid;
error_log $2/backend.err warn;
worker_rlimit_nofile 20000;
events { worker_connections 19000; }
http { access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  server { listen 127.0.0.1:$3 backlog=4096; location / { default_type text/plain; return 200 "ok"; } } }
CONF
}

# haproxy_h2 FILE LISTEN_PORT BACKEND_PORT: haproxy as the harness's run_h2.sh
# configures it (h2c in, HTTP/1.1 keep-alive out, one thread).
haproxy_h2() {
  cat > "$1" <<CONF
global
  nbthread 1
  maxconn 10100
  no strict-limits
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
frontend fe
  bind 127.0.0.1:$2 proto h2
  default_backend be
backend be
  server s1 127.0.0.1:$3
CONF
}
