# Shared by the gateway benchmarks (run.sh, instructions.sh): the two proxies' configuration
# in front of the same two loopback upstreams, so every figure compares the same set-up.
# Source it after setting UP_A and UP_B (the upstream ports).

# keel_toml DATA_DIR CONTROL_PORT PROXY_PORT -> keel's config on stdout (default settings)
keel_toml() {
  cat <<EOF
data_dir = "$1"
shutdown_grace = "5s"
[control]
listen = "127.0.0.1:$2"
admin_token = "bench-admin-token"
[proxy]
listen = "127.0.0.1:$3"
[[proxy.nodes]]
name = "a"
base_url = "http://127.0.0.1:$UP_A"
[[proxy.nodes]]
name = "b"
base_url = "http://127.0.0.1:$UP_B"
[log]
format = "json"
level = "warn"
EOF
}

# nginx_conf DIR PORT MAIN_DIRECTIVES -> nginx's config on stdout: proxy_pass with
# proxy_next_upstream over the two upstreams, keep-alive on both sides like keel
nginx_conf() {
  cat <<EOF
$3
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream llm {
    server 127.0.0.1:$UP_A max_fails=1 fail_timeout=10s;
    server 127.0.0.1:$UP_B max_fails=1 fail_timeout=10s;
    keepalive 64;
    keepalive_requests 1000000;  # like keel: no cap on requests per upstream connection
  }
  server {
    listen 127.0.0.1:$2;
    keepalive_requests 1000000;  # like keel: the load generator's connections are never cut
    location / {
      proxy_pass http://llm;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;
      proxy_next_upstream_tries 3;
      proxy_connect_timeout 5s;
      proxy_read_timeout 10s;
    }
  }
}
EOF
}

# wait_port PORT [SECONDS]: until something accepts on 127.0.0.1:PORT (default 10 s at most)
wait_port() {
  for _ in $(seq $((${2:-10} * 10))); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done
  echo "port $1 not up" >&2; exit 1
}
