// Command app is the web app berth's benchmark deploys. GET /kib answers
// 1 KiB of text (the throughput runs); any other path answers
// "berth-bench <message> release=<release>", where the message is the text
// of /message.txt (a Dockerfile-built image) or else $BENCH_MESSAGE (a
// prebuilt image run with env). On SIGTERM it stops taking connections and
// lets the requests in flight finish, as a well-behaved app does.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	msg := os.Getenv("BENCH_MESSAGE")
	if b, err := os.ReadFile("/message.txt"); err == nil {
		msg = strings.TrimSpace(string(b))
	}
	if msg == "" {
		msg = "bench"
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	answer := []byte(fmt.Sprintf("berth-bench %s release=%s\n", msg, os.Getenv("BERTH_RELEASE")))
	kib := bytes.Repeat([]byte("x"), 1023)
	kib = append(kib, '\n')

	mux := http.NewServeMux()
	mux.HandleFunc("/kib", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(kib)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(answer)
	})
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("app %q listening on :%s", msg, port)
	select {
	case err := <-errc:
		log.Fatal(err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Printf("shutdown: %v", err)
	}
	log.Print("stopped")
}
