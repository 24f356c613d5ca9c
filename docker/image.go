package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/berthhq/berth"
)

// ImageExists reports whether an image (reference or ID) is present locally.
func (e *Engine) ImageExists(ctx context.Context, ref string) (bool, error) {
	const op = "image exists"
	if err := checkImage(op, ref); err != nil {
		return false, err
	}
	_, err := e.cli.ImageInspect(ctx, ref)
	switch werr := wrap(op, fmt.Errorf("inspect image %s: %w", ref, err)); {
	case err == nil:
		return true, nil
	case berth.IsKind(werr, berth.NotFound):
		return false, nil
	default:
		return false, werr
	}
}

// Images lists the local images that carry all the labels, newest first.
func (e *Engine) Images(ctx context.Context, labels map[string]string) ([]berth.Image, error) {
	const op = "list images"
	if err := checkLabels(op, labels); err != nil {
		return nil, err
	}
	list, err := e.cli.ImageList(ctx, client.ImageListOptions{Filters: labelFilter(labels)})
	if err != nil {
		return nil, wrap(op, err)
	}
	out := make([]berth.Image, 0, len(list.Items))
	for _, s := range list.Items {
		img := berth.Image{ID: s.ID, Labels: s.Labels, Created: time.Unix(s.Created, 0).UTC(), Size: s.Size}
		for _, t := range s.RepoTags {
			if t != "<none>:<none>" {
				img.Tags = append(img.Tags, t)
			}
		}
		out = append(out, img)
	}
	slices.SortFunc(out, func(a, b berth.Image) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// RemoveImage removes an image by ID or tag, with its untagged parents. A
// missing image is not an error; an image a container uses (or, by ID, one
// with several tags) is a berth.Conflict.
func (e *Engine) RemoveImage(ctx context.Context, ref string) error {
	const op = "remove image"
	if err := checkImage(op, ref); err != nil {
		return err
	}
	_, err := e.cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true})
	if werr := wrap(op, fmt.Errorf("remove image %s: %w", ref, err)); err != nil && !berth.IsKind(werr, berth.NotFound) {
		return werr
	}
	return nil
}

// ImportImage makes the image tag from a root filesystem tar with one
// Engine API import (no build, no intermediate container); changes are
// Dockerfile instructions applied to it, such as `ENTRYPOINT ["/app"]` or
// `LABEL k=v`.
func (e *Engine) ImportImage(ctx context.Context, rootfs io.Reader, tag string, changes []string) error {
	const op = "import image"
	if err := checkImage(op, tag); err != nil {
		return err
	}
	rc, err := e.cli.ImageImport(ctx, client.ImageImportSource{Source: rootfs, SourceName: "-"}, tag, client.ImageImportOptions{Changes: changes})
	if err != nil {
		return wrap(op, fmt.Errorf("import image %s: %w", tag, err))
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return wrap(op, fmt.Errorf("import image %s: %w", tag, err))
		}
		if m.Error != "" || m.ErrorDetail != nil {
			msg := m.Error
			if msg == "" {
				msg = m.ErrorDetail.Message
			}
			return berth.E(op, berth.Invalid, "import image %s: %s", tag, msg)
		}
	}
	return nil
}

// RemoveLabelled removes every container, network, volume and image that
// carries all the labels (containers first, so that what they use can go),
// and returns every failure joined. An image still used by a container
// without those labels (a shared one) is left to that container's owner
// and is not a failure.
func (e *Engine) RemoveLabelled(ctx context.Context, labels map[string]string) error {
	if len(labels) == 0 {
		return berth.E("remove labelled objects", berth.Invalid, "no labels: that would select everything")
	}
	var errs []error
	cs, err := e.Containers(ctx, labels)
	errs = append(errs, err)
	for _, c := range cs {
		errs = append(errs, e.Remove(ctx, c.ID, 0))
	}
	nets, err := e.Networks(ctx, labels)
	errs = append(errs, err)
	for _, n := range nets {
		errs = append(errs, e.RemoveNetwork(ctx, n))
	}
	vols, err := e.Volumes(ctx, labels)
	errs = append(errs, err)
	for _, v := range vols {
		errs = append(errs, e.RemoveVolume(ctx, v))
	}
	imgs, err := e.Images(ctx, labels)
	errs = append(errs, err)
	for _, img := range imgs {
		// Removing the last tag removes the image; an untagged one goes
		// by ID.
		refs := img.Tags
		if len(refs) == 0 {
			refs = []string{img.ID}
		}
		for _, ref := range refs {
			if err := e.RemoveImage(ctx, ref); err != nil && !berth.IsKind(err, berth.Conflict) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
