// Package registry is Ferry's client for OCI registries. It pushes the
// one-layer images that hold package bits to Ferry's own registry, and reads,
// resolves and deletes images there and in the registries that docker
// packages name.
package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferrycf/ferry/config"
)

// Platform is the platform of every image Ferry pushes.
var Platform = v1.Platform{OS: "linux", Architecture: "amd64"}

// ErrNotFound is returned when a manifest or tag does not exist.
var ErrNotFound = errors.New("image not found")

// Opener opens a layer's content: an uncompressed or gzip-compressed tar
// stream. It is called several times, once per pass over the layer, and
// must return the same bytes each time.
type Opener func() (io.ReadCloser, error)

// Client talks to Ferry's registry, configured by config.Registry, and to
// other registries anonymously or with explicit credentials.
type Client struct {
	address        string
	clusterAddress string
	repository     string
	insecure       bool
	// auth is for references on address. Other registries get credentials
	// only through WithCredentials.
	auth authn.Authenticator
	// override, when set, authenticates every reference.
	override  authn.Authenticator
	transport http.RoundTripper
}

// New returns a client for the registry cfg describes. Credentials are used
// only when a username is set.
func New(cfg config.Registry) *Client {
	c := &Client{
		address:        strings.TrimRight(cfg.Address, "/"),
		clusterAddress: strings.TrimRight(cfg.ClusterAddress, "/"),
		repository:     strings.Trim(cfg.Repository, "/"),
		insecure:       cfg.Insecure,
		auth:           authn.Anonymous,
		transport:      remote.DefaultTransport,
	}
	if c.clusterAddress == "" {
		c.clusterAddress = c.address
	}
	if cfg.Username != "" {
		c.auth = authn.FromConfig(authn.AuthConfig{Username: cfg.Username, Password: cfg.Password})
	}
	return c
}

// WithCredentials returns a copy of c that authenticates to every registry
// with username and password, such as a docker package's private registry.
func (c *Client) WithCredentials(username, password string) *Client {
	copied := *c
	copied.override = authn.FromConfig(authn.AuthConfig{Username: username, Password: password})
	return &copied
}

// WithTransport returns a copy of c that sends its requests through t.
func (c *Client) WithTransport(t http.RoundTripper) *Client {
	copied := *c
	copied.transport = t
	return &copied
}

// Repository returns the repository under Ferry's prefix named by parts,
// as Ferry reaches it: "<address>/<prefix>/<part>/<part>".
func (c *Client) Repository(parts ...string) string {
	segments := []string{c.address}
	if c.repository != "" {
		segments = append(segments, c.repository)
	}
	return strings.Join(append(segments, parts...), "/")
}

// PackageRepository is the repository of the bits package guid.
func (c *Client) PackageRepository(guid string) string {
	return c.Repository("packages", guid)
}

// ClusterReference rewrites a reference on Ferry's registry to the address
// pods and the kubelet use for the same registry. References to other
// registries are returned unchanged.
func (c *Client) ClusterReference(ref string) string {
	if rest, ok := strings.CutPrefix(ref, c.address+"/"); ok {
		return c.clusterAddress + "/" + rest
	}
	return ref
}

// ValidateReference checks that ref is a valid image reference, such as
// "nginx", "nginx:1.25" or "registry.example.com/team/app@sha256:…".
func ValidateReference(ref string) error {
	if strings.TrimSpace(ref) != ref || ref == "" {
		return fmt.Errorf("invalid image reference %q", ref)
	}
	if _, err := name.ParseReference(ref); err != nil {
		return err
	}
	return nil
}

// PushLayer pushes a linux/amd64 image made of the one layer that open
// returns, with labels in its config, to ref: a repository with an optional
// tag, "latest" by default. It returns the digest-pinned reference
// "<repository>@sha256:…". Pushing the same layer and labels again yields
// the same digest.
func (c *Client) PushLayer(ctx context.Context, ref string, open Opener, labels map[string]string) (string, error) {
	tag, err := name.NewTag(ref, c.nameOptions(ref)...)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	layer, err := tarball.LayerFromOpener(tarball.Opener(open), tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return "", fmt.Errorf("push %s: read layer: %w", ref, err)
	}
	img, err := singleLayerImage(layer, labels)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}

	if err := remote.Write(tag, img, c.remoteOptions(ctx, ref)...); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	return tag.Context().Name() + "@" + digest.String(), nil
}

// singleLayerImage builds an OCI image of layer whose config names
// Platform and carries labels, with no timestamps, so equal input gives an
// equal digest.
func singleLayerImage(layer v1.Layer, labels map[string]string) (v1.Image, error) {
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS = Platform.OS
	cfg.Architecture = Platform.Architecture
	cfg.Config.Labels = labels
	return mutate.ConfigFile(img, cfg)
}

// Copy copies the image src to dst (a repository with an optional tag) and
// returns dst's digest-pinned reference. Within one registry the layers are
// mounted, not uploaded again.
func (c *Client) Copy(ctx context.Context, src, dst string) (string, error) {
	img, err := c.image(ctx, src)
	if err != nil {
		return "", err
	}
	tag, err := name.NewTag(dst, c.nameOptions(dst)...)
	if err != nil {
		return "", fmt.Errorf("copy to %s: %w", dst, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("copy %s: %w", src, err)
	}
	if err := remote.Write(tag, img, c.remoteOptions(ctx, dst)...); err != nil {
		return "", fmt.Errorf("copy %s to %s: %w", src, dst, mapError(err))
	}
	return tag.Context().Name() + "@" + digest.String(), nil
}

// ConfigFile returns the config of the image ref. For an index, it is the
// config of the Platform image.
func (c *Client) ConfigFile(ctx context.Context, ref string) (*v1.ConfigFile, error) {
	img, err := c.image(ctx, ref)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", ref, mapError(err))
	}
	return cfg, nil
}

// Labels returns the labels in the config of the image ref, and an empty
// map for an image without labels.
func (c *Client) Labels(ctx context.Context, ref string) (map[string]string, error) {
	cfg, err := c.ConfigFile(ctx, ref)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{}
	for k, v := range cfg.Config.Labels {
		labels[k] = v
	}
	return labels, nil
}

// Resolve returns ref pinned to the digest its tag points to now, as
// "<repository>@sha256:…". A reference that is already pinned is checked
// to exist and returned in the same form. For a multi-platform index the
// digest is the index's, and ConfigFile picks the Platform image from it.
func (c *Client) Resolve(ctx context.Context, ref string) (string, error) {
	parsed, err := name.ParseReference(ref, c.nameOptions(ref)...)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	desc, err := remote.Head(parsed, c.remoteOptions(ctx, ref)...)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", ref, mapError(err))
	}
	return parsed.Context().Name() + "@" + desc.Digest.String(), nil
}

// Delete deletes the manifest ref, which must be pinned by digest. A
// manifest that is already gone is not an error, so retried deletes
// succeed.
func (c *Client) Delete(ctx context.Context, ref string) error {
	digest, err := name.NewDigest(ref, c.nameOptions(ref)...)
	if err != nil {
		return fmt.Errorf("delete %s: a digest reference is required: %w", ref, err)
	}
	err = remote.Delete(digest, c.remoteOptions(ctx, ref)...)
	if err != nil && !errors.Is(mapError(err), ErrNotFound) {
		return fmt.Errorf("delete %s: %w", ref, mapError(err))
	}
	return nil
}

// OpenLayer returns the uncompressed tar stream of the only layer of the
// image ref. Images with more or fewer layers are an error. The caller
// closes the stream.
func (c *Client) OpenLayer(ctx context.Context, ref string) (io.ReadCloser, error) {
	img, err := c.image(ctx, ref)
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("layers of %s: %w", ref, mapError(err))
	}
	if len(layers) != 1 {
		return nil, fmt.Errorf("image %s has %d layers, want 1", ref, len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		return nil, fmt.Errorf("layer of %s: %w", ref, mapError(err))
	}
	return rc, nil
}

func (c *Client) image(ctx context.Context, ref string) (v1.Image, error) {
	parsed, err := name.ParseReference(ref, c.nameOptions(ref)...)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	img, err := remote.Image(parsed, c.remoteOptions(ctx, ref)...)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, mapError(err))
	}
	return img, nil
}

// ownRegistry reports whether ref is on Ferry's registry, by either of its
// addresses.
func (c *Client) ownRegistry(ref string) bool {
	return strings.HasPrefix(ref, c.address+"/") || strings.HasPrefix(ref, c.clusterAddress+"/")
}

func (c *Client) nameOptions(ref string) []name.Option {
	if c.insecure && c.ownRegistry(ref) {
		return []name.Option{name.Insecure}
	}
	return nil
}

func (c *Client) remoteOptions(ctx context.Context, ref string) []remote.Option {
	auth := authn.Anonymous
	switch {
	case c.override != nil:
		auth = c.override
	case c.ownRegistry(ref):
		auth = c.auth
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(auth),
		remote.WithTransport(c.transport),
		remote.WithPlatform(Platform),
	}
}

// mapError turns a registry's 404 response into ErrNotFound, keeping the
// original error in the chain.
func mapError(err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
