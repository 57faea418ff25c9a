package cfapi

import (
	"context"
	"errors"
	"strings"

	"github.com/ferrycf/ferry/registry"
	"github.com/ferrycf/ferry/store"
)

// dropletsPageSize is how many droplets one query of an app delete reads.
const dropletsPageSize = 500

// deleteAppImages deletes an app's images from Ferry's registry: its bits
// packages, its buildpack droplets and its build cache. Deleting an image
// that is already gone is no error, so a retried app delete finishes what
// a failed one left. Images in other registries, such as a docker app's,
// are never touched.
//
// NOTE: a build whose droplet image was exported but never recorded as a
// droplet leaves that image behind, because the registry client lists no
// tags. The registry's garbage collection removes it only once it is
// untagged.
func (a *API) deleteAppImages(ctx context.Context, appGUID string) error {
	if a.registry == nil {
		return nil
	}
	return errors.Join(
		a.deleteAppPackageImages(ctx, appGUID),
		a.deleteAppDropletImages(ctx, appGUID),
		a.deleteBuildCache(ctx, appGUID),
	)
}

// deleteAppDropletImages deletes the images of the app's buildpack
// droplets. Only images in the app's own droplet repository are deleted,
// because no other app's droplet can name them.
func (a *API) deleteAppDropletImages(ctx context.Context, appGUID string) error {
	repository := a.registry.Repository("droplets", appGUID) + "@"
	deleted := map[string]bool{}
	var errs []error
	for page := 1; ; page++ {
		droplets, total, err := a.store.Droplets(ctx, store.DropletFilter{AppGUIDs: []string{appGUID}},
			store.Page{Number: page, PerPage: dropletsPageSize}, store.Visibility{All: true})
		if err != nil {
			return err
		}
		for _, d := range droplets {
			image := a.registryHostReference(d.Image)
			if d.LifecycleType != store.LifecycleBuildpack || !strings.HasPrefix(image, repository) || deleted[image] {
				continue
			}
			deleted[image] = true
			errs = append(errs, a.registry.Delete(ctx, image))
		}
		if len(droplets) == 0 || page*dropletsPageSize >= total {
			return errors.Join(errs...)
		}
	}
}

// deleteBuildCache deletes the app's build cache image, which every build
// of the app exports to the latest tag of its cache repository.
func (a *API) deleteBuildCache(ctx context.Context, appGUID string) error {
	pinned, err := a.registry.Resolve(ctx, a.registry.Repository("cache", appGUID))
	if errors.Is(err, registry.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return a.registry.Delete(ctx, pinned)
}
