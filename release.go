package berth

import "time"

// Release is an immutable record of what ran: an image and the configuration
// snapshot it was started with. Rolling back deploys an earlier release
// again, without a rebuild.
type Release struct {
	ID           string        `json:"id"`
	TeamID       string        `json:"team_id"`
	AppID        string        `json:"app_id"`
	Number       int           `json:"number"` // v1, v2… per app
	Image        string        `json:"image"`  // image ID or reference the containers run
	Commit       string        `json:"commit,omitempty"`
	DeploymentID string        `json:"deployment_id"`
	Config       ReleaseConfig `json:"config"`
	CreatedAt    time.Time     `json:"created_at"`
}

// ReleaseConfig is the configuration a release runs with.
type ReleaseConfig struct {
	Port      int               `json:"port"`
	Replicas  int               `json:"replicas"`
	Resources Resources         `json:"resources"`
	Health    HealthCheck       `json:"health"`
	Volumes   []Volume          `json:"volumes,omitempty"`
	Domains   []string          `json:"domains,omitempty"`
	Env       map[string]string `json:"env,omitempty"` // secret: sealed at rest, redacted by the API
	// Isolated runs the release on a network of its own that only the
	// proxy joins, not on the network the team's apps share: a preview of
	// a fork's commit that no member approved must not reach the team's
	// other containers.
	Isolated bool `json:"isolated,omitempty"`
}
