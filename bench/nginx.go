package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// nginxConf returns an nginx.conf that reverse-proxies every request on
// listen to upstream over a pool of kept-alive connections, the way a
// tuned production edge does: worker per core, no access log, HTTP/1.1
// upstream with keepalive, the Host and X-Forwarded-* headers set (as
// berth's proxy sets them). Every path nginx writes is under dir.
func nginxConf(dir, listen, upstream string) (string, error) {
	for _, a := range []string{listen, upstream} {
		host, port, err := net.SplitHostPort(a)
		if err != nil || net.ParseIP(host) == nil {
			return "", fmt.Errorf("nginx address %q: want ip:port", a)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("nginx address %q: bad port", a)
		}
	}
	if !filepath.IsAbs(dir) || strings.ContainsAny(dir, ";{}'\"\\ \t\n$#") {
		return "", fmt.Errorf("nginx directory %q: want an absolute path without special characters", dir)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	return `# written by berth's benchmark (go run ./bench)
worker_processes auto;
pid ` + p("nginx.pid") + `;
error_log ` + p("error.log") + ` warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path ` + p("client_body") + `;
    proxy_temp_path ` + p("proxy_temp") + `;
    fastcgi_temp_path ` + p("fastcgi_temp") + `;
    uwsgi_temp_path ` + p("uwsgi_temp") + `;
    scgi_temp_path ` + p("scgi_temp") + `;
    upstream app {
        server ` + upstream + `;
        keepalive 128;
    }
    server {
        listen ` + listen + `;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Proto $scheme;
        }
    }
}
`, nil
}

// writeNginxConf writes nginxConf into dir and returns the file's path.
func writeNginxConf(dir, listen, upstream string) (string, error) {
	conf, err := nginxConf(dir, listen, upstream)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return "", fmt.Errorf("write nginx.conf: %w", err)
	}
	return path, nil
}
