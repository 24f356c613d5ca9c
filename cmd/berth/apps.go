package main

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
)

func newAppsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "apps", Short: "Create, list, show, change and delete apps"}
	cmd.AddCommand(newAppsCreateCmd(g), newAppsListCmd(g), newAppsShowCmd(g), newAppsSetCmd(g), newAppsDeleteCmd(g))
	cmd.AddCommand(newAppsDeployKeyCmd(g), newAppsGitCredentialsCmd(g), newAppsHostKeysCmd(g))
	return cmd
}

// appFlags are the settings of an app on the command line.
type appFlags struct {
	git, branch, image string
	upload, push       bool
	port, replicas     int
	memory             string
	cpus               float64
	dockerfile, ctxDir string
	buildArgs          []string
	unsetBuildArgs     []string
	target             string
	healthPath         string
	healthInterval     time.Duration
	healthTimeout      time.Duration
	healthDeadline     time.Duration
	healthThreshold    int
	volumes            []string
}

func (f *appFlags) register(fs *pflag.FlagSet, update bool) {
	fs.StringVar(&f.git, "git", "", "deploy from this Git repository URL")
	fs.StringVar(&f.branch, "branch", "", "Git branch, tag or commit (default main); with --push, the branch whose pushes deploy")
	fs.StringVar(&f.image, "image", "", "deploy this prebuilt image")
	fs.BoolVar(&f.upload, "upload", false, "deploy build contexts uploaded with berth deploy --from-dir")
	fs.BoolVar(&f.push, "push", false, "deploy what is pushed with git to berth's hosted remote (berth git-remote NAME prints its URL)")
	fs.IntVar(&f.port, "port", 0, "port the app listens on in its container (default 8080)")
	fs.IntVar(&f.replicas, "replicas", 0, "number of containers (default 1)")
	fs.StringVar(&f.memory, "memory", "", "memory limit per container, such as 512M or 1G (0: none)")
	fs.Float64Var(&f.cpus, "cpus", 0, "CPU limit per container, such as 0.5 (0: none)")
	fs.StringVar(&f.dockerfile, "dockerfile", "", "Dockerfile path in the build context (default Dockerfile)")
	fs.StringVar(&f.ctxDir, "context", "", "build context directory in the source (default .)")
	fs.StringArrayVar(&f.buildArgs, "build-arg", nil, "build arg K=V (repeatable)")
	fs.StringVar(&f.target, "target", "", "Dockerfile stage to build")
	fs.StringVar(&f.healthPath, "health-path", "", "HTTP path that answers 2xx/3xx when the app is healthy (default /)")
	fs.DurationVar(&f.healthInterval, "health-interval", 0, "time between health probes (default 500ms)")
	fs.DurationVar(&f.healthTimeout, "health-timeout", 0, "timeout of one health probe (default 2s)")
	fs.DurationVar(&f.healthDeadline, "health-deadline", 0, "time a new release has to become healthy (default 60s)")
	fs.IntVar(&f.healthThreshold, "health-threshold", 0, "consecutive successful probes needed (default 1)")
	volHelp := "named volume NAME:/path (repeatable)"
	if update {
		volHelp += "; replaces every volume of the app"
		fs.StringArrayVar(&f.unsetBuildArgs, "unset-build-arg", nil, "remove build arg K (repeatable)")
	}
	fs.StringArrayVar(&f.volumes, "volume", nil, volHelp)
}

// parseMemory reads a memory size in MB: "512", "512M", "512MB", "2G".
func parseMemory(s string) (int64, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	switch {
	case strings.HasSuffix(u, "GB"), strings.HasSuffix(u, "G"), strings.HasSuffix(u, "GIB"):
		mult = 1024
		u = strings.TrimRight(u, "GIB")
	case strings.HasSuffix(u, "MB"), strings.HasSuffix(u, "M"), strings.HasSuffix(u, "MIB"):
		u = strings.TrimRight(u, "MIB")
	}
	n, err := strconv.ParseInt(u, 10, 64)
	if err != nil || n < 0 || n > 1<<30 {
		return 0, fmt.Errorf("memory %q: use megabytes such as 512 or 512M, or gigabytes such as 2G", s)
	}
	return n * mult, nil
}

// parsePairs reads K=V arguments.
func parsePairs(what string, pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: use KEY=VALUE", what, p)
		}
		out[k] = v
	}
	return out, nil
}

// parseVolumes reads NAME:/path arguments.
func parseVolumes(specs []string) ([]berth.Volume, error) {
	vols := make([]berth.Volume, 0, len(specs))
	for _, s := range specs {
		name, p, ok := strings.Cut(s, ":")
		if !ok || name == "" || p == "" {
			return nil, fmt.Errorf("volume %q: use NAME:/path/in/container", s)
		}
		vols = append(vols, berth.Volume{Name: name, Path: p})
	}
	return vols, nil
}

// sourceCount counts how many of --git, --image, --upload and --push are
// set.
func (f *appFlags) sourceCount() int {
	n := 0
	for _, set := range []bool{f.git != "", f.image != "", f.upload, f.push} {
		if set {
			n++
		}
	}
	return n
}

// app builds a new app named name from the flags.
func (f *appFlags) app(name string) (*berth.App, error) {
	if f.sourceCount() != 1 {
		return nil, errors.New("say where the code comes from: one of --git URL, --image IMAGE, --upload or --push")
	}
	if f.branch != "" && f.git == "" && !f.push {
		return nil, errors.New("--branch goes with --git or --push")
	}
	a := &berth.App{Name: name, Port: f.port, Replicas: f.replicas}
	switch {
	case f.git != "":
		a.Source = berth.Source{Kind: berth.SourceGit, Git: f.git, Ref: f.branch}
	case f.image != "":
		a.Source = berth.Source{Kind: berth.SourceImage, Image: f.image}
	case f.push:
		a.Source = berth.Source{Kind: berth.SourcePush, Ref: f.branch}
	default:
		a.Source = berth.Source{Kind: berth.SourceUpload}
	}
	if f.memory != "" {
		mb, err := parseMemory(f.memory)
		if err != nil {
			return nil, err
		}
		a.Resources.MemoryMB = mb
	}
	a.Resources.CPUs = f.cpus
	args, err := parsePairs("build arg", f.buildArgs)
	if err != nil {
		return nil, err
	}
	if len(args) > 0 {
		a.Build.Args = args
	}
	a.Build.Dockerfile, a.Build.Context, a.Build.Target = f.dockerfile, f.ctxDir, f.target
	a.Health = berth.HealthCheck{Path: f.healthPath, Interval: f.healthInterval, Timeout: f.healthTimeout,
		Threshold: f.healthThreshold, Deadline: f.healthDeadline}
	if a.Volumes, err = parseVolumes(f.volumes); err != nil {
		return nil, err
	}
	return a, nil
}

// patch builds an update from the flags that were given.
func (f *appFlags) patch(fs *pflag.FlagSet) (api.AppPatch, error) {
	var p api.AppPatch
	changed := func(name string) bool { return fs.Changed(name) }
	if f.sourceCount() > 1 {
		return p, errors.New("use at most one of --git, --image, --upload and --push")
	}
	src := &api.SourcePatch{}
	kind := func(k berth.SourceKind) *berth.SourceKind { return &k }
	switch {
	case changed("git"):
		src.Kind, src.Git = kind(berth.SourceGit), &f.git
	case changed("image"):
		src.Kind, src.Image = kind(berth.SourceImage), &f.image
	case changed("upload") && f.upload:
		src.Kind = kind(berth.SourceUpload)
	case changed("push") && f.push:
		src.Kind = kind(berth.SourcePush)
	}
	if changed("branch") {
		src.Ref = &f.branch
	}
	if *src != (api.SourcePatch{}) {
		p.Source = src
	}
	if changed("port") {
		p.Port = &f.port
	}
	if changed("replicas") {
		p.Replicas = &f.replicas
	}
	res := &api.ResourcesPatch{}
	if changed("memory") {
		mb, err := parseMemory(f.memory)
		if err != nil {
			return p, err
		}
		res.MemoryMB = &mb
	}
	if changed("cpus") {
		res.CPUs = &f.cpus
	}
	if *res != (api.ResourcesPatch{}) {
		p.Resources = res
	}
	b := &api.BuildPatch{}
	if changed("dockerfile") {
		b.Dockerfile = &f.dockerfile
	}
	if changed("context") {
		b.Context = &f.ctxDir
	}
	if changed("target") {
		b.Target = &f.target
	}
	args, err := parsePairs("build arg", f.buildArgs)
	if err != nil {
		return p, err
	}
	for k, v := range args {
		if b.Args == nil {
			b.Args = map[string]*string{}
		}
		b.Args[k] = &v
	}
	for _, k := range f.unsetBuildArgs {
		if b.Args == nil {
			b.Args = map[string]*string{}
		}
		b.Args[k] = nil
	}
	if b.Dockerfile != nil || b.Context != nil || b.Target != nil || b.Args != nil {
		p.Build = b
	}
	h := &api.HealthPatch{}
	if changed("health-path") {
		h.Path = &f.healthPath
	}
	if changed("health-interval") {
		h.Interval = &f.healthInterval
	}
	if changed("health-timeout") {
		h.Timeout = &f.healthTimeout
	}
	if changed("health-deadline") {
		h.Deadline = &f.healthDeadline
	}
	if changed("health-threshold") {
		h.Threshold = &f.healthThreshold
	}
	if *h != (api.HealthPatch{}) {
		p.Health = h
	}
	if changed("volume") {
		vols, err := parseVolumes(f.volumes)
		if err != nil {
			return p, err
		}
		p.Volumes = &vols
	}
	return p, nil
}

func newAppsCreateCmd(g *globals) *cobra.Command {
	var f appFlags
	cmd := &cobra.Command{
		Use:   "create NAME (--git URL [--branch REF] | --image IMAGE | --upload | --push [--branch BRANCH]) [flags]",
		Short: "Create an app",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			a, err := f.app(args[0])
			if err != nil {
				return err
			}
			created, err := c.CreateApp(cmd.Context(), a)
			if err != nil {
				return err
			}
			return g.showApp(created)
		},
	}
	f.register(cmd.Flags(), false)
	return cmd
}

func newAppsListCmd(g *globals) *cobra.Command {
	var q api.AppQuery
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List apps",
		Long:    "List the team's apps by name, all of them or those whose name contains --search, in --project.",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			apps, _, err := c.FindApps(cmd.Context(), q)
			if err != nil {
				return err
			}
			if g.json() {
				if apps == nil {
					apps = []berth.App{}
				}
				return g.printJSON(apps)
			}
			now := time.Now()
			t := newTable(g.sys.out, "NAME", "SOURCE", "PORT", "REPLICAS", "CREATED")
			for _, a := range apps {
				t.row(a.Name, sourceOf(a.Source), a.Port, a.Replicas, age(a.CreatedAt, now))
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVarP(&q.Query, "search", "s", "", "only apps whose name contains this")
	cmd.Flags().StringVar(&q.Project, "project", "", "only the apps of this project (name or ID)")
	return cmd
}

// sourceOf describes an app's source in a few words.
func sourceOf(s berth.Source) string {
	switch s.Kind {
	case berth.SourceGit:
		return s.Git + "#" + s.Ref
	case berth.SourceImage:
		return s.Image
	case berth.SourcePush:
		return "git push to " + s.Ref
	}
	return string(s.Kind)
}

func newAppsShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show an app's settings",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			a, err := c.App(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.showApp(a)
		},
	}
}

// showApp prints an app's settings.
func (g *globals) showApp(a *berth.App) error {
	if g.json() {
		return g.printJSON(a)
	}
	t := newTable(g.sys.out)
	t.row("Name:", a.Name)
	t.row("ID:", a.ID)
	t.row("Source:", string(a.Source.Kind))
	switch a.Source.Kind {
	case berth.SourceGit:
		t.row("Git:", a.Source.Git)
		t.row("Ref:", a.Source.Ref)
	case berth.SourceImage:
		t.row("Image:", a.Source.Image)
	case berth.SourcePush:
		t.row("Branch:", a.Source.Ref+" (git push to berth git-remote "+a.Name+")")
	}
	if a.Source.Kind != berth.SourceImage {
		t.row("Dockerfile:", orDefault(a.Build.Dockerfile, "Dockerfile"))
		t.row("Context:", orDefault(a.Build.Context, "."))
		if a.Build.Target != "" {
			t.row("Target:", a.Build.Target)
		}
		keys := make([]string, 0, len(a.Build.Args))
		for k := range a.Build.Args {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			t.row("Build arg:", k+"="+a.Build.Args[k])
		}
	}
	t.row("Port:", a.Port)
	t.row("Replicas:", a.Replicas)
	t.row("Memory:", limit(a.Resources.MemoryMB != 0, fmt.Sprintf("%d MB", a.Resources.MemoryMB)))
	t.row("CPUs:", limit(a.Resources.CPUs != 0, strconv.FormatFloat(a.Resources.CPUs, 'g', -1, 64)))
	h := a.Health
	t.row("Health:", fmt.Sprintf("GET %s every %s, timeout %s, %d success(es), deadline %s", h.Path, h.Interval, h.Timeout, h.Threshold, h.Deadline))
	for _, v := range a.Volumes {
		t.row("Volume:", v.Name+" at "+v.Path)
	}
	t.row("Created:", a.CreatedAt.Local().Format(time.DateTime))
	t.row("Updated:", a.UpdatedAt.Local().Format(time.DateTime))
	return t.flush()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func limit(set bool, s string) string {
	if !set {
		return "no limit"
	}
	return s
}

func newAppsSetCmd(g *globals) *cobra.Command {
	var f appFlags
	cmd := &cobra.Command{
		Use:   "set NAME [flags]",
		Short: "Change an app's settings (they apply from the next deployment)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := f.patch(cmd.Flags())
			if err != nil {
				return err
			}
			if p == (api.AppPatch{}) {
				return errors.New("nothing to change: pass a setting such as --port or --replicas")
			}
			a, err := c.UpdateApp(cmd.Context(), args[0], p)
			if err != nil {
				return err
			}
			return g.showApp(a)
		},
	}
	f.register(cmd.Flags(), true)
	return cmd
}

func newAppsDeleteCmd(g *globals) *cobra.Command {
	var volumes bool
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Stop an app and delete it with its deployments, releases, domains and env",
		Long: "Stop an app and delete it with its deployments, releases, domains and env.\n" +
			"Its named volumes hold data and are kept unless --volumes is given.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.DeleteApp(cmd.Context(), args[0], volumes); err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]any{"deleted": args[0], "volumes_removed": volumes})
			}
			if volumes {
				fmt.Fprintf(g.sys.out, "Deleted app %s and its volumes.\n", args[0])
			} else {
				fmt.Fprintf(g.sys.out, "Deleted app %s (its volumes are kept).\n", args[0])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&volumes, "volumes", false, "also remove the app's named volumes and the data in them")
	return cmd
}
