package docker

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/berthhq/berth"
)

// EnsureNetwork creates the named bridge network if it does not exist.
//
// The Engine API does not make creation by name atomic: two requests that
// race both succeed and leave two networks with one name (seen on Docker 20.10).
// So every call that sees several keeps the first in (Created, ID) order and
// removes the others. That order is total, the first network is never removed
// by anyone, and the racer whose create became visible last sees them all, so
// the copies converge to one whichever request finished first.
func (e *Engine) EnsureNetwork(ctx context.Context, name string, labels map[string]string) error {
	const op = "ensure network"
	if err := checkObject(op, "network", name); err != nil {
		return err
	}
	if err := checkLabels(op, labels); err != nil {
		return err
	}
	e.netMu.Lock()
	defer e.netMu.Unlock()
	nets, err := e.networksNamed(ctx, name)
	if err != nil {
		return wrap(op, err)
	}
	if len(nets) == 0 {
		if _, err := e.cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge", Labels: labels}); err != nil {
			if !berth.IsKind(wrap(op, err), berth.Conflict) { // a conflict: created meanwhile
				return wrap(op, fmt.Errorf("create network %s: %w", name, err))
			}
		}
		if nets, err = e.networksNamed(ctx, name); err != nil {
			return wrap(op, err)
		}
	}
	for _, dup := range nets[min(1, len(nets)):] {
		e.log.Info("network created twice concurrently; removing the later copy", "network", name, "id", dup.ID)
		if _, err := e.cli.NetworkRemove(ctx, dup.ID, client.NetworkRemoveOptions{}); err != nil && !berth.IsKind(wrap(op, err), berth.NotFound) {
			return wrap(op, fmt.Errorf("remove duplicate network %s: %w", name, err))
		}
	}
	return nil
}

// networksNamed returns the networks called exactly name, oldest first.
func (e *Engine) networksNamed(ctx context.Context, name string) ([]network.Summary, error) {
	list, err := e.cli.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("name", name)})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var out []network.Summary
	for _, n := range list.Items {
		if n.Name == name {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b network.Summary) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// RemoveNetwork removes the named network. A missing network is not an
// error; one that still has containers attached is a berth.Conflict.
func (e *Engine) RemoveNetwork(ctx context.Context, name string) error {
	const op = "remove network"
	if err := checkObject(op, "network", name); err != nil {
		return err
	}
	nets, err := e.networksNamed(ctx, name)
	if err != nil {
		return wrap(op, err)
	}
	for _, n := range nets {
		if _, err := e.cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
			werr := wrap(op, fmt.Errorf("remove network %s: %w", name, err))
			if berth.IsKind(werr, berth.NotFound) {
				continue
			}
			if strings.Contains(err.Error(), "active endpoints") {
				werr = &berth.Error{Op: op, Kind: berth.Conflict, Msg: fmt.Sprintf("network %s still has containers attached", name), Err: err}
			}
			return werr
		}
	}
	return nil
}

// Connect attaches every running container that carries all the labels to
// the named network — berth's proxy to an app's private network. A container
// attached already is left as it is. Labels are required: an empty set would
// select every container.
func (e *Engine) Connect(ctx context.Context, name string, labels map[string]string) error {
	return e.attach(ctx, "connect network", name, labels, true)
}

// Disconnect detaches every container that carries all the labels from the
// named network. A missing network, or a container not attached, is not an
// error.
func (e *Engine) Disconnect(ctx context.Context, name string, labels map[string]string) error {
	return e.attach(ctx, "disconnect network", name, labels, false)
}

func (e *Engine) attach(ctx context.Context, op, name string, labels map[string]string, connect bool) error {
	if err := checkObject(op, "network", name); err != nil {
		return err
	}
	if len(labels) == 0 {
		return berth.E(op, berth.Invalid, "select the containers by at least one label")
	}
	if err := checkLabels(op, labels); err != nil {
		return err
	}
	nets, err := e.networksNamed(ctx, name)
	if err != nil {
		return wrap(op, err)
	}
	if len(nets) == 0 {
		if connect {
			return berth.E(op, berth.NotFound, "no network named %s", name)
		}
		return nil
	}
	list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: !connect, Filters: labelFilter(labels)})
	if err != nil {
		return wrap(op, fmt.Errorf("list containers: %w", err))
	}
	for _, c := range list.Items {
		on := false
		if c.NetworkSettings != nil {
			_, on = c.NetworkSettings.Networks[name]
		}
		switch {
		case connect && !on:
			_, err = e.cli.NetworkConnect(ctx, nets[0].ID, client.NetworkConnectOptions{Container: c.ID})
		case !connect && on:
			_, err = e.cli.NetworkDisconnect(ctx, nets[0].ID, client.NetworkDisconnectOptions{Container: c.ID, Force: true})
		default:
			continue
		}
		if err != nil && !berth.IsKind(wrap(op, err), berth.NotFound) {
			return wrap(op, fmt.Errorf("%s %s: %w", op, c.ID[:12], err))
		}
	}
	return nil
}

// Networks returns the names of the networks that carry all the labels.
func (e *Engine) Networks(ctx context.Context, labels map[string]string) ([]string, error) {
	const op = "list networks"
	if err := checkLabels(op, labels); err != nil {
		return nil, err
	}
	list, err := e.cli.NetworkList(ctx, client.NetworkListOptions{Filters: labelFilter(labels)})
	if err != nil {
		return nil, wrap(op, err)
	}
	var names []string
	for _, n := range list.Items {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// EnsureVolume creates the named local volume if it does not exist.
func (e *Engine) EnsureVolume(ctx context.Context, name string, labels map[string]string) error {
	const op = "ensure volume"
	if err := checkObject(op, "volume", name); err != nil {
		return err
	}
	if err := checkLabels(op, labels); err != nil {
		return err
	}
	// Creating an existing volume returns it unchanged.
	if _, err := e.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Driver: "local", Labels: labels}); err != nil {
		return wrap(op, fmt.Errorf("create volume %s: %w", name, err))
	}
	return nil
}

// RemoveVolume removes a named volume. A missing volume is not an error; one
// in use is a berth.Conflict.
func (e *Engine) RemoveVolume(ctx context.Context, name string) error {
	const op = "remove volume"
	if err := checkObject(op, "volume", name); err != nil {
		return err
	}
	_, err := e.cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{})
	if werr := wrap(op, fmt.Errorf("remove volume %s: %w", name, err)); err != nil && !berth.IsKind(werr, berth.NotFound) {
		return werr
	}
	return nil
}

// Volumes returns the names of the volumes that carry all the labels.
func (e *Engine) Volumes(ctx context.Context, labels map[string]string) ([]string, error) {
	const op = "list volumes"
	if err := checkLabels(op, labels); err != nil {
		return nil, err
	}
	list, err := e.cli.VolumeList(ctx, client.VolumeListOptions{Filters: labelFilter(labels)})
	if err != nil {
		return nil, wrap(op, err)
	}
	var names []string
	for _, v := range list.Items {
		names = append(names, v.Name)
	}
	slices.Sort(names)
	return names, nil
}
