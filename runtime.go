package berth

import "time"

// Labels berth puts on every Docker object it creates. berth finds its
// objects by these labels, never by name alone, and never touches an object
// without LabelManaged.
const (
	LabelManaged    = "berth.managed"    // "true"
	LabelInstance   = "berth.instance"   // which berth server owns it (its data directory's ID)
	LabelTeam       = "berth.team"       // team ID
	LabelApp        = "berth.app"        // app ID
	LabelAppName    = "berth.app.name"   // app name, for people reading `docker ps`
	LabelRelease    = "berth.release"    // release ID
	LabelDeployment = "berth.deployment" // deployment ID that created it
	LabelRole       = "berth.role"       // "app", "proxy", "build" or "network" (an app's own network)
)

// ContainerSpec is what the engine asks a runtime to run: one replica of a
// release.
type ContainerSpec struct {
	Name        string            // unique container name; informational
	Image       string            // image ID or reference
	Env         map[string]string // environment
	Labels      map[string]string // must include LabelManaged
	Network     string            // the berth network to attach to
	MemoryBytes int64             // 0 = no limit
	NanoCPUs    int64             // 0 = no limit
	Volumes     []VolumeMount     // named volumes
	StopTimeout time.Duration     // grace between SIGTERM and SIGKILL
}

// VolumeMount mounts a named Docker volume at a path in the container.
type VolumeMount struct {
	Volume string // full Docker volume name
	Path   string
}

// Container is what a runtime reports about one container.
type Container struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Image     string            `json:"image"`
	Labels    map[string]string `json:"labels,omitempty"`
	State     string            `json:"state"`            // created, running, restarting, exited, dead…
	Health    string            `json:"health,omitempty"` // Docker HEALTHCHECK status, if any
	IP        string            `json:"ip,omitempty"`     // address on the berth network
	ExitCode  int               `json:"exit_code"`
	StartedAt time.Time         `json:"started_at"`
}

// Running reports whether the container is up.
func (c Container) Running() bool { return c.State == "running" }

// BuildSpec is what the engine asks a builder to build.
type BuildSpec struct {
	ContextDir  string            // directory on the server holding the build context
	Dockerfile  string            // path relative to ContextDir; default "Dockerfile"
	Args        map[string]string // build args
	Target      string            // multi-stage target, optional
	Tag         string            // tag for the result, such as "berth/hello:3"
	Labels      map[string]string // labels for the image
	MemoryBytes int64             // limit for the build's containers; 0 = none
	NanoCPUs    int64             // limit for the build's containers; 0 = none
}

// Route tells the proxy which hosts go to which targets.
type Route struct {
	App     string   `json:"app"`     // route name: the app ID
	Hosts   []string `json:"hosts"`   // host names, normalized
	Targets []string `json:"targets"` // host:port of each live replica
}

// Probe asks the proxy to health-check targets before they take traffic.
type Probe struct {
	Targets []string    `json:"targets"`
	Health  HealthCheck `json:"health"`
}

// Image is a local image as a runtime reports it.
type Image struct {
	ID      string            `json:"id"`
	Tags    []string          `json:"tags,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	Created time.Time         `json:"created"`
	Size    int64             `json:"size"`
}
