package web

import (
	"bufio"
	"net/http"
	"strconv"

	"github.com/berthhq/berth"
)

// release is a release as the API lists it: Kept says its image is still
// kept, so it can be rolled back to.
type release struct {
	berth.Release
	Kept bool `json:"kept"`
}

// appForms names the form of the app page each action path belongs to,
// where its refusal is shown.
var appForms = map[string]string{
	"settings": "settings",
	"domains":  "domains",
	"remove":   "domains",
	"delete":   "delete",
	"deploy":   "live",
	"rollback": "releases",
}

// runtimeTail is how many lines of the runtime log the app page shows
// before any script follows it.
const runtimeTail = 100

// runtimeLog reads the last lines of app's runtime log (its live
// containers' output, env values masked by the engine) for the page, and
// returns the URL of the live stream the page's script follows from there.
// A failure is shown in place of the lines: the rest of the page stands.
func (s *Server) runtimeLog(r *http.Request, app string) (lines []logLine, failure, stream string) {
	base := p("/api/v1/apps/%s/logs", app)
	ans, err := s.call(r, "GET", base+"?tail="+strconv.Itoa(runtimeTail), nil, nil, "")
	if err != nil {
		return nil, s.failed(r, err).Error, ""
	}
	sc := bufio.NewScanner(&ans.body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, logLine{Seq: int64(len(lines) + 1), Spans: ansiSpans(sc.Text())})
	}
	return lines, "", base + "?follow=true&tail=0"
}
