package berth

import (
	"fmt"
	"time"
)

// DefaultProject is the name of the project every team is created with. An
// app created without a project goes there, so every app has exactly one
// project and per-project grants need no special case.
const DefaultProject = "default"

// Project groups some apps of a team. Members can be narrowed to some
// projects (see Member.Projects): an app outside them is invisible to the
// member, exactly like a missing one.
type Project struct {
	ID        string    `json:"id"`
	TeamID    string    `json:"team_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Validate checks a project's name (the rule of app names).
func (p *Project) Validate() error {
	if err := ValidName(p.Name); err != nil {
		return E("validate project", Invalid, "project %v", err)
	}
	return nil
}

// Member is a user's membership of a team: their role and, for developers
// and viewers, the projects they are narrowed to (empty: every project).
type Member struct {
	User     User     `json:"user"`
	Role     Role     `json:"role"`
	Projects []string `json:"projects,omitempty"` // project IDs
}

// Membership is a team a user belongs to and their role in it.
type Membership struct {
	Team Team `json:"team"`
	Role Role `json:"role"`
}

// Narrowable reports whether members of role r can be narrowed to some
// projects: developers and viewers can; owners and admins always see the
// whole team, since they manage it.
func (r Role) Narrowable() bool { return r == RoleDeveloper || r == RoleViewer }

// ValidTeamName checks a team's name (the rule of app names).
func ValidTeamName(s string) error {
	if err := ValidName(s); err != nil {
		return fmt.Errorf("team %w", err)
	}
	return nil
}
