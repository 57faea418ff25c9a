package k8sbackend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Labels pack writes on a CNB builder image.
const (
	builderMetadataLabel = "io.buildpacks.builder.metadata"
	buildpackOrderLabel  = "io.buildpacks.buildpack.order"
)

// catalogTTL is how long the catalog trusts what it read from a builder
// image before reading it again.
const catalogTTL = 5 * time.Minute

// ErrUnknownStack is returned for a stack no builder is configured for.
var ErrUnknownStack = errors.New("unknown stack")

// Images is the registry access staging needs. *registry.Client
// implements it.
type Images interface {
	// Resolve returns ref pinned to the digest its tag points to now.
	Resolve(ctx context.Context, ref string) (string, error)
	// ConfigFile returns the config of the image ref.
	ConfigFile(ctx context.Context, ref string) (*v1.ConfigFile, error)
	// Delete deletes the manifest ref, which must be pinned by digest.
	Delete(ctx context.Context, ref string) error
}

// Builder describes one stack's CNB builder image.
type Builder struct {
	Stack string
	// Image is the builder image as configured.
	Image       string
	Description string
	// RunImage is the first run image the builder names.
	RunImage string
	// Buildpacks are the builder's buildpacks, in detection order first and
	// then by id.
	Buildpacks []BuildpackInfo
	// Created is the builder image's creation time from its config.
	Created time.Time
	// Default marks the stack of apps that name none.
	Default bool
}

// BuildpackInfo is one buildpack in a builder.
type BuildpackInfo struct {
	ID       string
	Version  string
	Homepage string
}

// builderMetadata is the part of the builder metadata label Ferry reads.
type builderMetadata struct {
	Description string `json:"description"`
	Stack       struct {
		RunImage struct {
			Image string `json:"image"`
		} `json:"runImage"`
	} `json:"stack"`
	Images []struct {
		Image string `json:"image"`
	} `json:"images"`
	Buildpacks []struct {
		ID       string `json:"id"`
		Version  string `json:"version"`
		Homepage string `json:"homepage"`
	} `json:"buildpacks"`
}

type buildpackOrder []struct {
	Group []struct {
		ID string `json:"id"`
	} `json:"group"`
}

// ParseBuilder reads a builder from its image config.
func ParseBuilder(stack, image string, cfg *v1.ConfigFile) (Builder, error) {
	b := Builder{Stack: stack, Image: image, Created: cfg.Created.Time}
	raw, ok := cfg.Config.Labels[builderMetadataLabel]
	if !ok {
		return Builder{}, fmt.Errorf("builder image %s has no %s label; build it with pack builder create", image, builderMetadataLabel)
	}
	var md builderMetadata
	if err := json.Unmarshal([]byte(raw), &md); err != nil {
		return Builder{}, fmt.Errorf("builder image %s: decode the %s label: %w", image, builderMetadataLabel, err)
	}
	b.Description = md.Description
	b.RunImage = md.Stack.RunImage.Image
	if len(md.Images) > 0 && md.Images[0].Image != "" {
		b.RunImage = md.Images[0].Image
	}

	position := map[string]int{}
	if raw, ok := cfg.Config.Labels[buildpackOrderLabel]; ok {
		var order buildpackOrder
		if err := json.Unmarshal([]byte(raw), &order); err != nil {
			return Builder{}, fmt.Errorf("builder image %s: decode the %s label: %w", image, buildpackOrderLabel, err)
		}
		for _, group := range order {
			for _, bp := range group.Group {
				if _, seen := position[bp.ID]; !seen {
					position[bp.ID] = len(position)
				}
			}
		}
	}
	for _, bp := range md.Buildpacks {
		b.Buildpacks = append(b.Buildpacks, BuildpackInfo{ID: bp.ID, Version: bp.Version, Homepage: bp.Homepage})
	}
	sort.SliceStable(b.Buildpacks, func(i, j int) bool {
		pi, iOrdered := position[b.Buildpacks[i].ID]
		pj, jOrdered := position[b.Buildpacks[j].ID]
		switch {
		case iOrdered && jOrdered:
			return pi < pj
		case iOrdered != jOrdered:
			return iOrdered
		default:
			return b.Buildpacks[i].ID < b.Buildpacks[j].ID
		}
	})
	return b, nil
}

// ResolveBuildpacks maps requested Cloud Foundry buildpack names to the
// builder's buildpacks: a name is looked up in aliases first, then taken
// as a CNB id, optionally as "id@version". It returns the names that match
// nothing as an error.
func (b Builder) ResolveBuildpacks(names []string, aliases map[string]string) ([]BuildpackRef, error) {
	var refs []BuildpackRef
	var unknown []string
	for _, n := range names {
		id, version, _ := strings.Cut(n, "@")
		if alias, ok := aliases[n]; ok {
			id, version, _ = strings.Cut(alias, "@")
		}
		i := slices.IndexFunc(b.Buildpacks, func(bp BuildpackInfo) bool {
			return bp.ID == id && (version == "" || bp.Version == version)
		})
		if i < 0 {
			unknown = append(unknown, n)
			continue
		}
		refs = append(refs, BuildpackRef{ID: b.Buildpacks[i].ID, Version: b.Buildpacks[i].Version})
	}
	if len(unknown) > 0 {
		return nil, &UnknownBuildpacksError{Names: unknown, Stack: b.Stack}
	}
	return refs, nil
}

// UnknownBuildpacksError lists requested buildpacks a builder lacks.
type UnknownBuildpacksError struct {
	Names []string
	Stack string
}

func (e *UnknownBuildpacksError) Error() string {
	return fmt.Sprintf("buildpack(s) %s not found in the builder of stack %q", quoteAll(e.Names), e.Stack)
}

func quoteAll(items []string) string {
	quoted := make([]string, len(items))
	for i, it := range items {
		quoted[i] = "'" + it + "'"
	}
	return strings.Join(quoted, ", ")
}

// Catalog reads the configured builder images and caches what they
// contain. It is safe for concurrent use.
type Catalog struct {
	images       Images
	cfg          Config
	stacks       []string
	logger       *slog.Logger
	now          func() time.Time
	mu           sync.Mutex
	entries      map[string]catalogEntry
	refreshLocks map[string]*sync.Mutex
}

type catalogEntry struct {
	builder Builder
	readAt  time.Time
}

// NewCatalog returns a catalog of the builders in cfg, read through images.
// stacks lists the stack names in configuration order.
func NewCatalog(images Images, cfg Config, stacks []string, logger *slog.Logger) *Catalog {
	return &Catalog{images: images, cfg: cfg, stacks: slices.Clone(stacks), logger: logger, now: time.Now,
		entries: map[string]catalogEntry{}, refreshLocks: map[string]*sync.Mutex{}}
}

// Stacks returns the configured stack names in configuration order.
func (c *Catalog) Stacks() []string { return slices.Clone(c.stacks) }

// DefaultStack returns the stack of apps that name none.
func (c *Catalog) DefaultStack() string { return c.cfg.DefaultStack }

// HasStack reports whether a builder is configured for stack.
func (c *Catalog) HasStack(stack string) bool { return c.cfg.Builders[stack] != "" }

// Builder returns the builder of stack, reading its image when the cached
// copy is older than catalogTTL. When the image cannot be read but an older
// copy exists, the older copy is returned and the error logged.
func (c *Catalog) Builder(ctx context.Context, stack string) (Builder, error) {
	image := c.cfg.Builders[stack]
	if image == "" {
		return Builder{}, fmt.Errorf("%w %q", ErrUnknownStack, stack)
	}

	c.mu.Lock()
	entry, cached := c.entries[stack]
	lock := c.refreshLocks[stack]
	if lock == nil {
		lock = &sync.Mutex{}
		c.refreshLocks[stack] = lock
	}
	c.mu.Unlock()
	if cached && c.now().Sub(entry.readAt) < catalogTTL {
		return entry.builder, nil
	}

	// One reader per stack at a time; the others wait and take its result.
	lock.Lock()
	defer lock.Unlock()
	c.mu.Lock()
	entry, cached = c.entries[stack]
	c.mu.Unlock()
	if cached && c.now().Sub(entry.readAt) < catalogTTL {
		return entry.builder, nil
	}

	builder, err := c.read(ctx, stack, image)
	if err != nil {
		if cached {
			c.logger.Warn("builder image unreadable, using the cached copy", "stack", stack, "image", image, "error", err)
			return entry.builder, nil
		}
		return Builder{}, err
	}
	c.mu.Lock()
	c.entries[stack] = catalogEntry{builder: builder, readAt: c.now()}
	c.mu.Unlock()
	return builder, nil
}

func (c *Catalog) read(ctx context.Context, stack, image string) (Builder, error) {
	cfg, err := c.images.ConfigFile(ctx, c.cfg.HostRef(image))
	if err != nil {
		return Builder{}, fmt.Errorf("read builder image %s of stack %q: %w", image, stack, err)
	}
	b, err := ParseBuilder(stack, image, cfg)
	if err != nil {
		return Builder{}, err
	}
	b.Default = stack == c.cfg.DefaultStack
	return b, nil
}

// Builders returns the builders of every configured stack that can be
// read, in configuration order, and the errors of those that cannot.
func (c *Catalog) Builders(ctx context.Context) ([]Builder, error) {
	var builders []Builder
	var errs []error
	for _, stack := range c.stacks {
		b, err := c.Builder(ctx, stack)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		builders = append(builders, b)
	}
	return builders, errors.Join(errs...)
}
