package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/store"
)

// teamRoutes are the routes of teams, members, projects, invitations,
// tokens and the audit log. See docs/permissions.md for the rules.
func teamRoutes() []route {
	const v = "/api/v1"
	return []route{
		{"GET", v + "/teams", berth.ScopeRead, (*Server).listTeams, ""},
		{"POST", v + "/teams", berth.ScopeWrite, (*Server).createTeam, "team.create"},
		{"GET", v + "/team", berth.ScopeRead, (*Server).getTeam, ""},

		{"GET", v + "/members", berth.ScopeRead, (*Server).listMembers, ""},
		{"PATCH", v + "/members/{user}", berth.ScopeAdmin, (*Server).setMemberRole, "member.set_role"},
		{"DELETE", v + "/members/{user}", berth.ScopeAdmin, (*Server).removeMember, "member.remove"},
		{"PUT", v + "/members/{user}/projects", berth.ScopeAdmin, (*Server).setMemberProjects, "member.set_projects"},

		{"GET", v + "/projects", berth.ScopeRead, (*Server).listProjects, ""},
		{"POST", v + "/projects", berth.ScopeAdmin, (*Server).createProject, "project.create"},
		{"DELETE", v + "/projects/{project}", berth.ScopeAdmin, (*Server).deleteProject, "project.delete"},

		{"GET", v + "/invitations", berth.ScopeAdmin, (*Server).listInvitations, ""},
		{"POST", v + "/invitations", berth.ScopeAdmin, (*Server).createInvitation, "invitation.create"},
		{"DELETE", v + "/invitations/{id}", berth.ScopeAdmin, (*Server).revokeInvitation, "invitation.revoke"},
		{"POST", v + "/invitations/accept", public, (*Server).acceptInvitation, "invitation.accept"},

		{"GET", v + "/tokens", berth.ScopeRead, (*Server).listTokens, ""},
		{"POST", v + "/tokens", berth.ScopeWrite, (*Server).createToken, "token.create"},
		{"DELETE", v + "/tokens/{id}", berth.ScopeWrite, (*Server).revokeToken, "token.revoke"},

		{"GET", v + "/audit", berth.ScopeAdmin, (*Server).listAudit, ""},
	}
}

// sees reports whether the principal may see project id: a member
// narrowed to some projects sees only those.
func sees(p *auth.Principal, projectID string) bool {
	return p.Projects == nil || slices.Contains(p.Projects, projectID)
}

// TeamInfo is a team as one of its members sees it.
type TeamInfo struct {
	Team berth.Team `json:"team"`
	Role berth.Role `json:"role"`
	// Projects are the IDs of the projects the member is narrowed to;
	// absent when they see every project.
	Projects []string `json:"projects,omitempty"`
}

func (s *Server) listTeams(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	teams, err := s.store.TeamsOf(r.Context(), p.User.ID)
	if err != nil {
		return fmt.Errorf("list teams: %w", err)
	}
	if teams == nil {
		teams = []berth.Membership{}
	}
	return writeJSON(w, http.StatusOK, teams)
}

func (s *Server) getTeam(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return writeJSON(w, http.StatusOK, TeamInfo{Team: *p.Team, Role: p.Role, Projects: p.Projects})
}

// TeamRequest is the body of POST /api/v1/teams.
type TeamRequest struct {
	Name string `json:"name"`
}

// TeamCreated answers POST /api/v1/teams: the new team and a token of its
// creator in it (tokens are per team), whose secret is shown once.
type TeamCreated struct {
	Team  berth.Team   `json:"team"`
	Role  berth.Role   `json:"role"`
	Token TokenCreated `json:"token"`
}

// createTeam creates a team whose owner is the caller. The token it returns
// carries the caller's current scopes, never more.
func (s *Server) createTeam(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in TeamRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if err := berth.ValidTeamName(in.Name); err != nil {
		return berth.E("create team", berth.Invalid, "%v", err)
	}
	now := s.now().UTC()
	t := &berth.Team{ID: berth.NewID("team"), Name: in.Name, CreatedAt: now}
	if err := s.store.CreateTeamWithOwner(r.Context(), t, p.User.ID); err != nil {
		if berth.IsKind(err, berth.Conflict) {
			return berth.E("create team", berth.Conflict, "a team named %q already exists", in.Name)
		}
		return fmt.Errorf("create team: %w", err)
	}
	scopes := []berth.Scope{berth.ScopeAdmin}
	if p.Token != nil {
		scopes = p.Token.Scopes
	}
	secret, tok, err := auth.IssueToken(r.Context(), s.store, t.ID, p.User.ID, "team "+t.Name, scopes, nil, now)
	if err != nil {
		return fmt.Errorf("issue token in team %s: %w", t.Name, err)
	}
	return writeJSON(w, http.StatusCreated, TeamCreated{Team: *t, Role: berth.RoleOwner, Token: TokenCreated{Token: *tok, Secret: secret}})
}

// loadMember finds member {user} of the caller's team; NotFound otherwise,
// exactly like a user that does not exist.
func (s *Server) loadMember(r *http.Request, p *auth.Principal) (string, berth.Role, error) {
	id := r.PathValue("user")
	notFound := berth.E("find member", berth.NotFound, "no member %q", clip(id))
	if !berth.ValidID("user", id) {
		return "", "", notFound
	}
	role, err := s.store.Member(r.Context(), p.Team.ID, id)
	if berth.IsKind(err, berth.NotFound) {
		return "", "", notFound
	}
	if err != nil {
		return "", "", fmt.Errorf("find member %s: %w", id, err)
	}
	return id, role, nil
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ms, err := s.store.Members(r.Context(), p.Team.ID)
	if err != nil {
		return fmt.Errorf("list members: %w", err)
	}
	if ms == nil {
		ms = []berth.Member{}
	}
	return writeJSON(w, http.StatusOK, ms)
}

// RoleRequest is the body of PATCH /api/v1/members/{user}.
type RoleRequest struct {
	Role berth.Role `json:"role"`
}

// mayManage checks that the caller may give role to (or take it from) a
// member whose role is now old: nobody grants above their own role, and
// only an owner touches an owner.
func mayManage(p *auth.Principal, old, role berth.Role) error {
	const op = "manage member"
	if role != "" && role.Rank() > p.Role.Rank() {
		return berth.E(op, berth.Forbidden, "you cannot grant the role %s, above your own (%s)", role, p.Role)
	}
	if (old == berth.RoleOwner || role == berth.RoleOwner) && p.Role != berth.RoleOwner {
		return berth.E(op, berth.Forbidden, "only an owner can make, change or remove an owner")
	}
	return nil
}

func (s *Server) setMemberRole(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id, old, err := s.loadMember(r, p)
	if err != nil {
		return err
	}
	var in RoleRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if !berth.ValidRole(in.Role) {
		return berth.E("set role", berth.Invalid, "unknown role %q: use owner, admin, developer or viewer", clip(string(in.Role)))
	}
	if err := mayManage(p, old, in.Role); err != nil {
		return err
	}
	if err := s.store.SetMemberRole(r.Context(), p.Team.ID, id, in.Role); err != nil {
		return fmt.Errorf("set role of %s: %w", id, err)
	}
	return s.writeMember(w, r, p, id)
}

func (s *Server) writeMember(w http.ResponseWriter, r *http.Request, p *auth.Principal, id string) error {
	ms, err := s.store.Members(r.Context(), p.Team.ID)
	if err != nil {
		return fmt.Errorf("list members: %w", err)
	}
	for _, m := range ms {
		if m.User.ID == id {
			return writeJSON(w, http.StatusOK, m)
		}
	}
	return berth.E("find member", berth.NotFound, "no member %q", id)
}

// removeMember removes a member, their tokens in the team and all their
// sessions. The last owner cannot leave.
func (s *Server) removeMember(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id, old, err := s.loadMember(r, p)
	if err != nil {
		return err
	}
	if err := mayManage(p, old, ""); err != nil {
		return err
	}
	if err := s.store.RemoveMember(r.Context(), p.Team.ID, id); err != nil {
		return fmt.Errorf("remove member %s: %w", id, err)
	}
	// Their browser sessions end too (they sign in again to reach their
	// other teams); their tokens in this team went with the membership.
	if _, err := s.store.DeleteUserSessions(r.Context(), id, nil); err != nil {
		return fmt.Errorf("end sessions of removed member %s: %w", id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ProjectsRequest is the body of PUT /api/v1/members/{user}/projects: the
// projects (names or IDs) a developer or viewer is narrowed to; empty gives
// back every project.
type ProjectsRequest struct {
	Projects []string `json:"projects"`
}

func (s *Server) setMemberProjects(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id, old, err := s.loadMember(r, p)
	if err != nil {
		return err
	}
	var in ProjectsRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if err := mayManage(p, old, ""); err != nil {
		return err
	}
	if len(in.Projects) > 0 && !old.Narrowable() {
		return berth.E("set projects", berth.Invalid, "only developers and viewers can be narrowed to projects; this member is %s", old)
	}
	ids, err := s.projectIDs(r, p, in.Projects)
	if err != nil {
		return err
	}
	if err := s.store.SetMemberProjects(r.Context(), p.Team.ID, id, ids); err != nil {
		return fmt.Errorf("set projects of %s: %w", id, err)
	}
	return s.writeMember(w, r, p, id)
}

// projectIDs resolves project names or IDs the caller sees.
func (s *Server) projectIDs(r *http.Request, p *auth.Principal, names []string) ([]string, error) {
	if len(names) > 100 {
		return nil, berth.E("find project", berth.Invalid, "at most 100 projects")
	}
	var ids []string
	for _, n := range names {
		pr, err := s.findProject(r, p, n)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ids, pr.ID) {
			ids = append(ids, pr.ID)
		}
	}
	return ids, nil
}

// findProject finds a project of the caller's team by name or ID. One the
// caller is not granted is not found, like one that does not exist.
func (s *Server) findProject(r *http.Request, p *auth.Principal, nameOrID string) (*berth.Project, error) {
	notFound := berth.E("find project", berth.NotFound, "no project %q", clip(nameOrID))
	if berth.ValidName(nameOrID) != nil && !berth.ValidID("proj", nameOrID) {
		return nil, notFound
	}
	pr, err := s.store.Project(r.Context(), p.Team.ID, nameOrID)
	if berth.IsKind(err, berth.NotFound) || err == nil && !sees(p, pr.ID) {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("find project %s: %w", nameOrID, err)
	}
	return pr, nil
}

// Project is a project as the API lists it, with how many apps it holds.
type Project struct {
	berth.Project
	Apps int `json:"apps"`
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	all, err := s.store.Projects(r.Context(), p.Team.ID)
	if err != nil {
		return fmt.Errorf("list projects: %w", err)
	}
	counts, err := s.store.ProjectAppCounts(r.Context(), p.Team.ID)
	if err != nil {
		return fmt.Errorf("list projects: %w", err)
	}
	out := []Project{}
	for _, pr := range all {
		if sees(p, pr.ID) {
			out = append(out, Project{Project: pr, Apps: counts[pr.ID]})
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// ProjectRequest is the body of POST /api/v1/projects.
type ProjectRequest struct {
	Name string `json:"name"`
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in ProjectRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	pr := &berth.Project{ID: berth.NewID("proj"), TeamID: p.Team.ID, Name: in.Name, CreatedAt: s.now().UTC()}
	if err := pr.Validate(); err != nil {
		return err
	}
	if err := s.store.CreateProject(r.Context(), pr); err != nil {
		if berth.IsKind(err, berth.Conflict) {
			return berth.E("create project", berth.Conflict, "a project named %q already exists", pr.Name)
		}
		return fmt.Errorf("create project: %w", err)
	}
	return writeJSON(w, http.StatusCreated, pr)
}

// deleteProject deletes an empty project (not the default one).
func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	pr, err := s.findProject(r, p, r.PathValue("project"))
	if err != nil {
		return err
	}
	if err := s.store.DeleteProject(r.Context(), p.Team.ID, pr.ID); err != nil {
		if berth.IsKind(err, berth.Conflict) {
			return err
		}
		return fmt.Errorf("delete project %s: %w", pr.Name, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// InvitationRequest is the body of POST /api/v1/invitations.
type InvitationRequest struct {
	Email     string     `json:"email"`
	Role      berth.Role `json:"role"`
	Projects  []string   `json:"projects,omitempty"`   // names or IDs
	ExpiresIn string     `json:"expires_in,omitempty"` // a duration; default 168h
}

// InvitationCreated answers POST /api/v1/invitations. The secret is shown
// once; the invited person sends it to AcceptURL (or runs
// "berth accept SECRET").
type InvitationCreated struct {
	Invitation berth.Invitation `json:"invitation"`
	Secret     string           `json:"secret"`
	AcceptURL  string           `json:"accept_url"`
}

// invitationPrefix starts invitation secrets, unlike tokens' "berth_".
const invitationPrefix = "berthinv_"

func (s *Server) createInvitation(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	const op = "create invitation"
	var in InvitationRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	email, err := berth.NormalizeEmail(in.Email)
	if err != nil {
		return err
	}
	ttl := berth.DefaultInvitationTTL
	if in.ExpiresIn != "" {
		if ttl, err = time.ParseDuration(in.ExpiresIn); err != nil {
			return berth.E(op, berth.Invalid, "expires_in: give a duration such as 72h")
		}
	}
	if !berth.ValidRole(in.Role) {
		return berth.E(op, berth.Invalid, "unknown role %q: use owner, admin, developer or viewer", clip(string(in.Role)))
	}
	if err := mayManage(p, "", in.Role); err != nil {
		return err
	}
	ids, err := s.projectIDs(r, p, in.Projects)
	if err != nil {
		return err
	}
	secret, _, err := auth.NewToken()
	if err != nil {
		return err
	}
	secret = invitationPrefix + strings.TrimPrefix(secret, auth.TokenPrefix)
	now := s.now().UTC()
	inv := &berth.Invitation{ID: berth.NewID("inv"), TeamID: p.Team.ID, Email: email, Role: in.Role, Projects: ids,
		Hash: auth.HashToken(secret), InvitedBy: p.User.ID, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := inv.Validate(); err != nil {
		return err
	}
	if err := s.store.CreateInvitation(r.Context(), inv); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return writeJSON(w, http.StatusCreated, InvitationCreated{Invitation: *inv, Secret: secret,
		AcceptURL: scheme + "://" + r.Host + "/api/v1/invitations/accept"})
}

func (s *Server) listInvitations(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	list, err := s.store.Invitations(r.Context(), p.Team.ID)
	if err != nil {
		return fmt.Errorf("list invitations: %w", err)
	}
	if list == nil {
		list = []berth.Invitation{}
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) revokeInvitation(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id := r.PathValue("id")
	notFound := berth.E("revoke invitation", berth.NotFound, "no invitation %q", clip(id))
	if !berth.ValidID("inv", id) {
		return notFound
	}
	if err := s.store.DeleteInvitation(r.Context(), p.Team.ID, id); err != nil {
		if berth.IsKind(err, berth.NotFound) {
			return notFound
		}
		return fmt.Errorf("revoke invitation %s: %w", id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// AcceptRequest is the body of POST /api/v1/invitations/accept. With an
// Authorization header, the signed-in user accepts (their e-mail must be the
// invited one); without, a new account is created with Name, the invited
// e-mail and, when given, Password (checked before the invitation is used).
type AcceptRequest struct {
	Secret   string `json:"secret"`
	Name     string `json:"name,omitempty"`
	Password string `json:"password,omitempty"`
}

// Accepted answers an accepted invitation: the team joined, and a token of
// the member in it (tokens are per team), shown once.
type Accepted struct {
	Team  berth.Team   `json:"team"`
	User  berth.User   `json:"user"`
	Role  berth.Role   `json:"role"`
	Token TokenCreated `json:"token"`
}

// validUserName checks the display name of a new account.
func validUserName(s string) error {
	if s == "" || utf8.RuneCountInString(s) > 64 || !utf8.ValidString(s) || strings.TrimSpace(s) != s ||
		strings.ContainsFunc(s, unicode.IsControl) {
		return berth.E("validate user", berth.Invalid, "name: give 1 to 64 printable characters")
	}
	return nil
}

// acceptInvitation is public: the invitation's secret is the credential,
// and the e-mail it was sent to must be the accepting account's.
func (s *Server) acceptInvitation(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	const op = "accept invitation"
	var in AcceptRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if !strings.HasPrefix(in.Secret, invitationPrefix) || len(in.Secret) > 128 {
		return berth.E(op, berth.NotFound, "invitation not found, used or expired")
	}
	ctx := r.Context()
	var a store.Acceptance
	if r.Header.Get("Authorization") != "" {
		p, err := auth.Authenticate(ctx, s.store, r, s.now())
		if err != nil {
			return err
		}
		if in.Name != "" || in.Password != "" {
			return berth.E(op, berth.Invalid, "signed in: send only the secret")
		}
		a = store.Acceptance{User: p.User}
	} else {
		if err := validUserName(in.Name); err != nil {
			return err
		}
		// The new account's e-mail is the invited one. A password is
		// checked before the invitation is used, and stored with it.
		a = store.Acceptance{User: &berth.User{ID: berth.NewID("user"), Name: in.Name}, NewUser: true}
		if in.Password != "" {
			hash, err := auth.HashPassword(in.Password)
			if err != nil {
				return err
			}
			a.PasswordHash = hash
		}
	}
	hash := auth.HashToken(in.Secret)
	inv, err := s.store.AcceptInvitation(ctx, hash, a, s.now())
	if err != nil {
		if berth.IsKind(err, berth.NotFound) || berth.IsKind(err, berth.Conflict) {
			return err
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	team, err := s.store.Team(ctx, inv.TeamID)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if rec, ok := w.(*recorder); ok {
		rec.audit.team, rec.audit.user = team, a.User
	}
	secret, tok, err := auth.IssueToken(ctx, s.store, team.ID, a.User.ID, "invitation", inv.Role.Scopes(), nil, s.now())
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return writeJSON(w, http.StatusOK, Accepted{Team: *team, User: *a.User, Role: inv.Role, Token: TokenCreated{Token: *tok, Secret: secret}})
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Name   string        `json:"name"`
	Scopes []berth.Scope `json:"scopes"`
	// ExpiresIn is a duration ("720h") or an RFC 3339 time; empty means
	// the token does not expire.
	ExpiresIn string `json:"expires_in,omitempty"`
	// Team (name or ID) issues the token in another team of the caller:
	// tokens are per team, and this is how a member switches teams.
	Team string `json:"team,omitempty"`
}

// TokenCreated is a new token with its secret, shown this once.
type TokenCreated struct {
	Token  berth.Token `json:"token"`
	Secret string      `json:"secret"`
}

// createToken issues a token of the caller. Its scopes never exceed what the
// caller holds: their role in the token's team, and the scopes of the token
// they call with.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	const op = "create token"
	var in TokenRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Name == "" || len(in.Name) > 64 || strings.ContainsFunc(in.Name, unicode.IsControl) {
		return berth.E(op, berth.Invalid, "name: give 1 to 64 printable characters")
	}
	if len(in.Scopes) == 0 || len(in.Scopes) > 5 {
		return berth.E(op, berth.Invalid, "scopes: give 1 to 5 of read, read-secrets, deploy, write, admin")
	}
	now := s.now().UTC()
	var expires *time.Time
	if in.ExpiresIn != "" {
		t, err := expiry(in.ExpiresIn, now)
		if err != nil {
			return err
		}
		expires = &t
	}
	team, role := p.Team, p.Role
	if in.Team != "" && in.Team != p.Team.ID && in.Team != p.Team.Name {
		var err error
		if team, role, err = s.otherTeam(r, p, in.Team); err != nil {
			return err
		}
	}
	for _, sc := range in.Scopes {
		if !berth.ValidScope(sc) {
			return berth.E(op, berth.Invalid, "unknown scope %q", clip(string(sc)))
		}
		if !berth.Allows(role.Scopes(), sc) || (p.Token != nil && !berth.Allows(p.Token.Scopes, sc)) {
			return berth.E(op, berth.Forbidden, "you cannot give a token the scope %q: you do not hold it", sc)
		}
	}
	secret, tok, err := auth.IssueToken(r.Context(), s.store, team.ID, p.User.ID, in.Name, in.Scopes, expires, now)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return writeJSON(w, http.StatusCreated, TokenCreated{Token: *tok, Secret: secret})
}

// otherTeam finds a team of the caller by name or ID; NotFound when the
// caller is not a member.
func (s *Server) otherTeam(r *http.Request, p *auth.Principal, nameOrID string) (*berth.Team, berth.Role, error) {
	teams, err := s.store.TeamsOf(r.Context(), p.User.ID)
	if err != nil {
		return nil, "", fmt.Errorf("list teams: %w", err)
	}
	for _, m := range teams {
		if m.Team.ID == nameOrID || m.Team.Name == nameOrID {
			return &m.Team, m.Role, nil
		}
	}
	return nil, "", berth.E("find team", berth.NotFound, "you are not a member of a team %q", clip(nameOrID))
}

// expiry parses a token's expiry: a duration from now, or an RFC 3339 time,
// which must be in the future.
func expiry(v string, now time.Time) (time.Time, error) {
	bad := berth.E("create token", berth.Invalid, "expires_in: give a duration such as 720h or a future RFC 3339 time")
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		d, derr := time.ParseDuration(v)
		if derr != nil || d <= 0 || d > 100*365*24*time.Hour {
			return time.Time{}, bad
		}
		t = now.Add(d)
	}
	if !t.After(now) {
		return time.Time{}, bad
	}
	return t.UTC(), nil
}

// listTokens lists the caller's own tokens; an admin sees all of the team's.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	all, err := s.store.Tokens(r.Context(), p.Team.ID)
	if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	out := []berth.Token{}
	for _, t := range all {
		if t.UserID == p.User.ID || p.Can(berth.ScopeAdmin) {
			out = append(out, t)
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// revokeToken deletes one of the caller's tokens (an admin: any of the
// team's). Another member's token is not found for a non-admin.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id := r.PathValue("id")
	notFound := berth.E("revoke token", berth.NotFound, "no token %q", clip(id))
	if !berth.ValidID("tok", id) {
		return notFound
	}
	t, err := s.store.Token(r.Context(), p.Team.ID, id)
	if berth.IsKind(err, berth.NotFound) || err == nil && t.UserID != p.User.ID && !p.Can(berth.ScopeAdmin) {
		return notFound
	}
	if err != nil {
		return fmt.Errorf("find token %s: %w", id, err)
	}
	if err := s.store.DeleteToken(r.Context(), p.Team.ID, id); err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
