// Command app is the web app the end-to-end tests deploy. It answers GET /
// with the text of /message.txt, the GREETING env var and its release;
// GET /slow?ms=N answers after N milliseconds; GET /say?text=T writes T to
// its log; GET /fetch?url=U fetches U and answers with what it got, or why
// not (what a container can reach). It exits at once when the message says "crash" (a release that
// never gets healthy) and waits STARTUP_DELAY (a Go duration) before it
// listens.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	b, err := os.ReadFile("/message.txt")
	if err != nil {
		log.Fatal(err)
	}
	msg := strings.TrimSpace(string(b))
	if msg == "crash" {
		log.Fatal("crashing on purpose")
	}
	if d, err := time.ParseDuration(os.Getenv("STARTUP_DELAY")); err == nil {
		time.Sleep(d)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s greeting=%s release=%s\n", msg, os.Getenv("GREETING"), os.Getenv("BERTH_RELEASE"))
	})
	// GET /say?text=… writes text to the app's log (the runtime log).
	http.HandleFunc("/say", func(w http.ResponseWriter, r *http.Request) {
		log.Print(r.URL.Query().Get("text"))
		fmt.Fprintln(w, "said")
	})
	http.HandleFunc("/fetch", func(w http.ResponseWriter, r *http.Request) {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(r.URL.Query().Get("url"))
		if err != nil {
			fmt.Fprintf(w, "unreachable: %v\n", err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		fmt.Fprintf(w, "fetched %d %s", resp.StatusCode, b)
	})
	http.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(min(ms, 60000)) * time.Millisecond)
		fmt.Fprintf(w, "%s slow=%d\n", msg, ms)
	})
	// As PID 1 in its container the app gets no default SIGTERM handling:
	// stop serving gracefully when berth retires it.
	srv := &http.Server{Addr: ":" + port}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	log.Printf("app %q listening on :%s", msg, port)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
