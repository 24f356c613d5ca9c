package web

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/berthhq/berth"
)

// settingsForm is the app page's settings form as text: from the app, or
// as the person typed it when the API refused it.
type settingsForm struct {
	Kind, Git, Ref, Image                                     string
	Dockerfile, Context, Target, Args                         string
	Port, Replicas, MemoryMB, CPUs, Volumes                   string
	HealthPath, HealthInterval, HealthTimeout, HealthDeadline string
	HealthThreshold                                           string
}

// formOf fills the settings form from app a.
func formOf(a *berth.App) settingsForm {
	var vols []string
	for _, v := range a.Volumes {
		vols = append(vols, v.Name+":"+v.Path)
	}
	var args []string
	for _, k := range slices.Sorted(maps.Keys(a.Build.Args)) {
		args = append(args, k+"="+a.Build.Args[k])
	}
	return settingsForm{
		Kind: string(a.Source.Kind), Git: a.Source.Git, Ref: a.Source.Ref, Image: a.Source.Image,
		Dockerfile: a.Build.Dockerfile, Context: a.Build.Context, Target: a.Build.Target, Args: strings.Join(args, "\n"),
		Port: strconv.Itoa(a.Port), Replicas: strconv.Itoa(a.Replicas),
		MemoryMB: strconv.FormatInt(a.Resources.MemoryMB, 10), CPUs: strconv.FormatFloat(a.Resources.CPUs, 'f', -1, 64),
		Volumes:    strings.Join(vols, "\n"),
		HealthPath: a.Health.Path, HealthInterval: a.Health.Interval.String(), HealthTimeout: a.Health.Timeout.String(),
		HealthDeadline: a.Health.Deadline.String(), HealthThreshold: strconv.Itoa(a.Health.Threshold),
	}
}

// postedForm is the settings form as it was posted.
func postedForm(r *http.Request) settingsForm {
	f := r.PostFormValue
	return settingsForm{
		Kind: f("kind"), Git: f("git"), Ref: f("ref"), Image: f("image"),
		Dockerfile: f("dockerfile"), Context: f("context"), Target: f("target"), Args: f("args"),
		Port: f("port"), Replicas: f("replicas"), MemoryMB: f("memory_mb"), CPUs: f("cpus"), Volumes: f("volumes"),
		HealthPath: f("health_path"), HealthInterval: f("health_interval"), HealthTimeout: f("health_timeout"),
		HealthDeadline: f("health_deadline"), HealthThreshold: f("health_threshold"),
	}
}

// settingsPatch turns the settings form into a JSON merge patch of the app.
// Build args replace oldArgs: a key no longer listed is removed (null).
func settingsPatch(r *http.Request, oldArgs map[string]string) (map[string]any, error) {
	f := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	src := map[string]any{"kind": f("kind")}
	switch berth.SourceKind(f("kind")) {
	case berth.SourceGit:
		src["git"], src["ref"], src["image"] = f("git"), f("ref"), nil
	case berth.SourceImage:
		src["image"], src["git"], src["ref"] = f("image"), nil, nil
	case berth.SourceUpload:
		src["git"], src["ref"], src["image"] = nil, nil, nil
	case berth.SourcePush:
		src["ref"], src["git"], src["image"] = f("ref"), nil, nil
	default:
		return nil, invalid("source: choose git, image, upload or push")
	}
	port, err := number(r, "port")
	if err != nil {
		return nil, err
	}
	replicas, err := number(r, "replicas")
	if err != nil {
		return nil, err
	}
	mem, err := number(r, "memory_mb")
	if err != nil {
		return nil, err
	}
	threshold, err := number(r, "health_threshold")
	if err != nil {
		return nil, err
	}
	var cpus float64
	if c := f("cpus"); c != "" {
		if cpus, err = strconv.ParseFloat(c, 64); err != nil || cpus < 0 {
			return nil, invalid("cpus: give a number such as 0.5")
		}
	}
	health := map[string]any{"path": f("health_path"), "threshold": threshold}
	for _, k := range []string{"interval", "timeout", "deadline"} {
		if d := f("health_" + k); d != "" {
			health[k] = d
		} else {
			health[k] = "0s"
		}
	}
	vols := []map[string]string{}
	for _, line := range lines(r.PostFormValue("volumes")) {
		name, path, ok := strings.Cut(line, ":")
		if !ok {
			return nil, invalid("volumes: write one NAME:/path per line")
		}
		vols = append(vols, map[string]string{"name": strings.TrimSpace(name), "path": strings.TrimSpace(path)})
	}
	args := map[string]any{}
	for k := range oldArgs {
		args[k] = nil
	}
	for _, line := range lines(r.PostFormValue("args")) {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, invalid("build args: write one KEY=value per line")
		}
		args[strings.TrimSpace(k)] = v
	}
	return map[string]any{
		"source":    src,
		"build":     map[string]any{"dockerfile": f("dockerfile"), "context": f("context"), "target": f("target"), "args": args},
		"port":      port,
		"replicas":  replicas,
		"resources": map[string]any{"memory_mb": mem, "cpus": cpus},
		"health":    health,
		"volumes":   vols,
	}, nil
}

func (s *Server) updateApp(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	s.act(w, r, s.appPage, func() (string, error) {
		var a berth.App
		if err := s.get(r, p("/api/v1/apps/%s", app), &a); err != nil {
			return "", err
		}
		patch, err := settingsPatch(r, a.Build.Args)
		if err != nil {
			return "", err
		}
		if err := s.send(r, "PATCH", p("/api/v1/apps/%s", app), patch, nil); err != nil {
			return "", err
		}
		return p("/apps/%s", app) + "?done=settings#settings", nil
	})
}
