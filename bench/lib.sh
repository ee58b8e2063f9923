# Shared by bench/cpu_split.sh and bench/peer_instructions.sh (sourced).

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
