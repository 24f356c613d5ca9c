package engine

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// collect is a lineWriter whose lines are kept.
func collect(m *masker) (*lineWriter, func() string) {
	var mu sync.Mutex
	var got []string
	w := newLineWriter(func(lines []string) {
		mu.Lock()
		got = append(got, lines...)
		mu.Unlock()
	}, m)
	return w, func() string {
		w.Close()
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(got, "\n")
	}
}

func TestMaskerValues(t *testing.T) {
	m := newMasker([]string{"1", "true", "8080", "hunter22", "s3cr3t-token-value", "hunter22-longer", "-----BEGIN KEY-----\nMIIEabcdef\nshort\n-----END KEY-----"})
	for in, want := range map[string]string{
		"port 8080 ok true 1":          "port 8080 ok true 1",
		"pw=hunter22!":                 "pw=••••••!",
		"hunter22-longer":              "••••••",
		"a s3cr3t-token-value b":       "a •••••• b",
		"x hunter22hunter22 y":         "x •••••••••••• y",
		"MIIEabcdef":                   "••••••",
		"short":                        "short",
		"-----BEGIN KEY-----":          "••••••",
		"no secret here at all, none.": "no secret here at all, none.",
	} {
		if got := m.mask(in); got != want {
			t.Errorf("mask(%q) = %q, want %q", in, got, want)
		}
	}
	if newMasker([]string{"1", "yes", "12345"}) != nil {
		t.Error("values shorter than MinMasked make a masker")
	}
	var none *masker
	if none.mask("hunter22") != "hunter22" || none.maskCut("abc", true, true) != "abc" {
		t.Error("the nil masker changes text")
	}
}

// TestLineWriterMasksAcrossWrites writes output holding secrets split at
// every possible byte boundary, in one and in many writes.
func TestLineWriterMasksAcrossWrites(t *testing.T) {
	secret := "s3cr3t-Value/42"
	m := newMasker([]string{secret, "other-secret"})
	text := "Step 1/3 : ARG TOKEN\n --> echo " + secret + " done\n\rprogress " + secret + "\r100% " + secret + "\nend other-secret"
	want := "Step 1/3 : ARG TOKEN\n --> echo •••••• done\n100% ••••••\nend ••••••"
	for i := 0; i <= len(text); i++ {
		for j := i; j <= len(text); j += 3 {
			w, got := collect(m)
			for _, part := range []string{text[:i], text[i:j], text[j:]} {
				w.Write([]byte(part))
			}
			if g := got(); g != want {
				t.Fatalf("split at %d,%d:\n%q\nwant\n%q", i, j, g, want)
			}
		}
	}
	// One byte at a time.
	w, got := collect(m)
	for i := range len(text) {
		w.Write([]byte{text[i]})
	}
	if g := got(); g != want {
		t.Errorf("byte by byte:\n%q", g)
	}
}

// TestLineWriterMasksCutLines: a line longer than maxLineBytes is cut; a
// secret across the cut is hidden on both sides.
func TestLineWriterMasksCutLines(t *testing.T) {
	secret := "ABCDEFGHIJKLMNOP"
	m := newMasker([]string{secret})
	for _, at := range []int{1, 5, 8, 15} {
		pad := strings.Repeat("x", maxLineBytes-at)
		w, got := collect(m)
		w.Write([]byte(pad + secret[:at]))
		w.Write([]byte(secret[at:] + " tail" + strings.Repeat("y", maxLineBytes) + "\n"))
		g := got()
		for i := 0; i+4 <= len(secret); i++ {
			if strings.Contains(g, secret[i:i+4]) {
				t.Errorf("cut at %d: part %q of the secret is in the output", at, secret[i:i+4])
			}
		}
		if !strings.Contains(g, "•") {
			t.Errorf("cut at %d: nothing masked", at)
		}
	}
}

func TestPrefixWriterMasks(t *testing.T) {
	secret := "postgres://u:pa55word@db/x"
	m := newMasker([]string{secret, "pa55word"})
	text := "connect " + secret + "\nlogin pa55word ok\n"
	for i := 0; i <= len(text); i++ {
		var b bytes.Buffer
		p := &prefixWriter{prefix: "d1-r1 | ", mu: &sync.Mutex{}, w: &b, mask: m}
		p.Write([]byte(text[:i]))
		p.Write([]byte(text[i:]))
		if want := "d1-r1 | connect ••••••\nd1-r1 | login •••••• ok\n"; b.String() != want {
			t.Fatalf("split at %d: %q", i, b.String())
		}
	}
	// A line without end is passed on in pieces, masked across the cut.
	var b bytes.Buffer
	p := &prefixWriter{prefix: "| ", mu: &sync.Mutex{}, w: &b, mask: m}
	p.Write([]byte(strings.Repeat("z", maxLogLine-3) + "pa55"))
	p.Write([]byte("word and more\n"))
	if strings.Contains(b.String(), "pa55") || strings.Contains(b.String(), "word and") && !strings.Contains(b.String(), "••••••") {
		t.Errorf("cut line leaks: %q", b.String()[len(b.String())-40:])
	}
	if strings.Count(b.String(), "\n") != 2 {
		t.Errorf("want 2 pieces, got %d", strings.Count(b.String(), "\n"))
	}
}
