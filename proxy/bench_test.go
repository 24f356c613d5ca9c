package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berthhq/berth"
)

// kib is the body the benchmark targets answer.
var kib = strings.Repeat("x", 1024)

func benchTarget(b *testing.B) string {
	return serveBackend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, kib)
	}))
}

// discard is a ResponseWriter that keeps nothing, so that the benchmark
// counts the proxy's allocations only.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkServeHTTP measures the forwarding path alone: lookup, rewrite,
// round trip to a keep-alive target, copy of a 1 KiB response.
func BenchmarkServeHTTP(b *testing.B) {
	p := newProxy(b, "")
	setRoute(b, p, "bench", []string{"bench.example.com"}, benchTarget(b))
	req := httptest.NewRequest(http.MethodGet, "http://bench.example.com/", nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discard{h: make(http.Header)}
		for pb.Next() {
			clear(w.h)
			p.ServeHTTP(w, req)
		}
	})
}

// BenchmarkLoopback measures a whole request through each of the proxy's
// servers over loopback keep-alive connections.
func BenchmarkLoopback(b *testing.B) {
	for _, f := range fronts {
		b.Run(f.name, func(b *testing.B) {
			p := newProxy(b, "")
			setRoute(b, p, "bench", []string{"bench.example.com"}, benchTarget(b))
			srv := f.serve(b, p)
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer c.CloseIdleConnections()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
					req.Host = "bench.example.com"
					resp, err := c.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}

// BenchmarkSetRoute changes one route of 1,000, persisted each time, as
// the benchmark's route_apply_ms_1000 does through the admin API.
func BenchmarkSetRoute(b *testing.B) {
	p := newProxy(b, "")
	ctx := context.Background()
	for i := range 1000 {
		setRoute(b, p, fmt.Sprintf("app-%04d", i), []string{fmt.Sprintf("a%04d.example.com", i)}, "10.0.0.1:80")
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := berth.Route{App: "app-0500", Hosts: []string{"a0500.example.com"}, Targets: []string{fmt.Sprintf("10.0.%d.%d:80", i/250%250, i%250+1)}}
		if err := p.SetRoute(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}
