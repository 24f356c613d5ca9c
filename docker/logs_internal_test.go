package docker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/network"
)

type writes struct{ got []string }

func (w *writes) Write(p []byte) (int, error) {
	w.got = append(w.got, string(p))
	return len(p), nil
}

func TestLineWriter(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	tests := []struct {
		name   string
		chunks []string
		want   []string
	}{
		{"whole lines", []string{"a\nb\n"}, []string{"a\n", "b\n"}},
		{"split across writes", []string{"he", "llo\nwor", "ld\n"}, []string{"hello\n", "world\n"}},
		{"partial line flushed at the end", []string{"a\nrest"}, []string{"a\n", "rest\n"}},
		{"empty lines kept", []string{"\n\n"}, []string{"\n", "\n"}},
		{"long line cut", []string{long, "\n"}, []string{long[:maxLine] + "\n", long[maxLine:] + "\n"}},
		{"nothing", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &writes{}
			lw := &lineWriter{w: w}
			for _, c := range tc.chunks {
				if n, err := lw.Write([]byte(c)); err != nil || n != len(c) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if err := lw.flush(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(w.got, tc.want) {
				t.Fatalf("got %q, want %q", w.got, tc.want)
			}
		})
	}
}

// TestDemultiplex checks that interleaved stdout and stderr frames come out
// as whole lines, each stream's partial line kept apart from the other's.
func TestDemultiplex(t *testing.T) {
	var mux bytes.Buffer
	frame := func(stream stdcopy.StdType, s string) {
		hdr := [8]byte{byte(stream)}
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(s)))
		mux.Write(hdr[:])
		mux.WriteString(s)
	}
	frame(stdcopy.Stdout, "out par")
	frame(stdcopy.Stderr, "err line\n")
	frame(stdcopy.Stdout, "tial\nlast")
	w := &writes{}
	o, e := &lineWriter{w: w}, &lineWriter{w: w}
	if _, err := stdcopy.StdCopy(o, e, &mux); err != nil {
		t.Fatal(err)
	}
	o.flush()
	e.flush()
	if want := []string{"err line\n", "out partial\n", "last\n"}; !slices.Equal(w.got, want) {
		t.Fatalf("got %q, want %q", w.got, want)
	}
}

func TestPickIP(t *testing.T) {
	ep := func(ip string) *network.EndpointSettings {
		return &network.EndpointSettings{IPAddress: netip.MustParseAddr(ip)}
	}
	nets := map[string]*network.EndpointSettings{"bridge": ep("172.17.0.2"), "zeta": ep("10.0.1.2"), "alpha": ep("10.0.0.2")}
	tests := []struct {
		name string
		nets map[string]*network.EndpointSettings
		want string
		net  string
	}{
		{"named network", nets, "10.0.1.2", "zeta"},
		{"named but absent", nets, "", "other"},
		{"first user network", nets, "10.0.0.2", ""},
		{"default bridge only", map[string]*network.EndpointSettings{"bridge": ep("172.17.0.2")}, "172.17.0.2", ""},
		{"none", nil, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pickIP(tc.nets, tc.net); got != tc.want {
				t.Fatalf("pickIP = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{time.Second: 1, 1500 * time.Millisecond: 2, time.Millisecond: 1, 10 * time.Second: 10} {
		if got := seconds(d); got != want {
			t.Errorf("seconds(%s) = %d, want %d", d, got, want)
		}
	}
}

func TestWrapKinds(t *testing.T) {
	if wrap("op", nil) != nil {
		t.Fatal("wrap(nil) != nil")
	}
	if err := wrap("op", errors.New("boom")); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("wrap = %v", err)
	}
}
