package web

import (
	"strconv"
	"strings"
)

// span is a run of log text with the CSS classes of its ANSI style
// ("b" bold, "fg1"…"fg15" colours). Its text is escaped by html/template
// like anything else.
type span struct {
	Class string
	Text  string
}

// ansiSpans splits a log line at its SGR escape sequences (ESC [ … m) into
// styled spans; other escape and control sequences are dropped. app.js
// does the same for lines that arrive live.
func ansiSpans(line string) []span {
	var out []span
	var text strings.Builder
	bold, fg := false, -1
	class := func() string {
		var c []string
		if bold {
			c = append(c, "b")
		}
		if fg >= 0 {
			c = append(c, "fg"+strconv.Itoa(fg))
		}
		return strings.Join(c, " ")
	}
	flush := func() {
		if text.Len() > 0 {
			out = append(out, span{Class: class(), Text: text.String()})
			text.Reset()
		}
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c != 0x1b {
			if c < 0x20 && c != '\t' {
				continue
			}
			text.WriteByte(c)
			continue
		}
		// ESC: a CSI sequence runs to its final byte in 0x40–0x7e.
		if i+1 >= len(line) || line[i+1] != '[' {
			i++
			continue
		}
		j := i + 2
		for j < len(line) && (line[j] < 0x40 || line[j] > 0x7e) {
			j++
		}
		if j >= len(line) {
			break
		}
		if line[j] == 'm' {
			flush()
			params := line[i+2 : j]
			if params == "" {
				params = "0"
			}
			for _, p := range strings.Split(params, ";") {
				n, err := strconv.Atoi(p)
				if err != nil {
					continue
				}
				switch {
				case n == 0:
					bold, fg = false, -1
				case n == 1:
					bold = true
				case n == 22:
					bold = false
				case n >= 30 && n <= 37:
					fg = n - 30
				case n == 39:
					fg = -1
				case n >= 90 && n <= 97:
					fg = n - 90 + 8
				}
			}
		}
		i = j
	}
	flush()
	return out
}
