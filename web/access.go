package web

import (
	"net/http"
	"strings"

	"github.com/berthhq/berth"
)

// accessView is the repository access page of an app: its deploy key
// (public half), whether it has an access token, and the ssh host keys it
// trusts. No secret ever reaches this page: the API does not return them.
type accessView struct {
	App         berth.App
	DeployKey   *berth.DeployKey
	Credentials berth.GitCredentials
	HostKeys    []berth.HostKey
	Username    string // the user name field, kept after a refusal
}

func (s *Server) accessPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v, a, ok := s.appTab(w, r)
	if !ok {
		return
	}
	v.Title = a.Name + " · repository access"
	av := accessView{App: *a, Username: strings.TrimSpace(r.PostFormValue("username"))}
	var k berth.DeployKey
	if err := s.get(r, p("/api/v1/apps/%s/deploy-key", a.Name), &k); err == nil {
		av.DeployKey = &k
	} else if ae, ok := err.(*apiError); !ok || ae.Status != http.StatusNotFound {
		s.errorPage(w, r, v, s.failed(r, err))
		return
	}
	if err := s.get(r, p("/api/v1/apps/%s/git-credentials", a.Name), &av.Credentials); err != nil {
		s.errorPage(w, r, v, s.failed(r, err))
		return
	}
	if err := s.get(r, p("/api/v1/apps/%s/host-keys", a.Name), &av.HostKeys); err != nil {
		s.errorPage(w, r, v, s.failed(r, err))
		return
	}
	v.Data = av
	s.show(w, r, v, "access", f)
}

// accessAction posts one change of the access page to the API.
func (s *Server) accessAction(method, what string, body func(r *http.Request) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		app := r.PathValue("app")
		s.act(w, r, s.accessPage, func() (string, error) {
			var in any
			if body != nil {
				in = body(r)
			}
			return p("/apps/%s/access", app), s.send(r, method, p("/api/v1/apps/%s/", app)+what, in, nil)
		})
	}
}
