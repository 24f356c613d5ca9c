package web

import (
	"net/http"
	"strings"
	"time"

	"github.com/berthhq/berth"
)

// project is a project as GET /api/v1/projects lists it.
type project struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Apps      int       `json:"apps"`
	CreatedAt time.Time `json:"created_at"`
}

// projectsView is the projects page.
type projectsView struct {
	Projects []project
	Name     string // the create form, refilled after a refusal
}

func (s *Server) projectsPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v := s.signedIn(w, r)
	if v == nil {
		return
	}
	v.Title, v.Nav = "Projects", "projects"
	pv := projectsView{Name: r.PostFormValue("name")}
	if err := s.get(r, "/api/v1/projects", &pv.Projects); err != nil {
		s.errorPage(w, r, v, s.failed(r, err))
		return
	}
	// A refusal shows next to its form; the forms are an admin's only.
	if f != nil && r.Method == http.MethodPost && berth.Allows(v.Me.Scopes, berth.ScopeAdmin) {
		v.ErrorAt = "project-create"
		if strings.HasSuffix(r.URL.Path, "/delete") {
			v.ErrorAt = "projects"
		}
	}
	v.Data = pv
	s.show(w, r, v, "projects", f)
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request) {
	s.act(w, r, s.projectsPage, func() (string, error) {
		body := map[string]string{"name": strings.TrimSpace(r.PostFormValue("name"))}
		return "/projects", s.send(r, "POST", "/api/v1/projects", body, nil)
	})
}

func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request) {
	s.act(w, r, s.projectsPage, func() (string, error) {
		return "/projects", s.send(r, "DELETE", p("/api/v1/projects/%s", r.PathValue("project")), nil, nil)
	})
}

// setMemberProjects narrows a developer or viewer to the projects ticked
// on the members page; none ticked gives back every project.
func (s *Server) setMemberProjects(w http.ResponseWriter, r *http.Request) {
	s.act(w, r, s.membersPage, func() (string, error) {
		ids := r.PostForm["projects"]
		if ids == nil {
			ids = []string{}
		}
		body := map[string][]string{"projects": ids}
		return "/members", s.send(r, "PUT", p("/api/v1/members/%s/projects", r.PathValue("user")), body, nil)
	})
}

// switchTeam moves the browser's session to another of the user's teams
// and shows that team's apps.
func (s *Server) switchTeam(w http.ResponseWriter, r *http.Request) {
	s.act(w, r, s.appsPage, func() (string, error) {
		body := map[string]string{"team": r.PostFormValue("team")}
		return "/apps", s.send(r, "POST", "/api/v1/session/team", body, nil)
	})
}
