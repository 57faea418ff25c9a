package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// pushable is an image or an image index, as remote.Push accepts it, with
// the digest the registry stores it under.
type pushable interface {
	remote.Taggable
	Digest() (v1.Hash, error)
}

func runPush(args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("imagetool push", flag.ContinueOnError)
	flags.SetOutput(stderr)
	insecure := flags.Bool("insecure", false, "use plain HTTP for any registry; without it only localhost, loopback and private (RFC 1918) registries use plain HTTP")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() != 2 {
		return errors.New("push: expected SOURCE and REF: an image archive or OCI layout directory, and the reference to push to")
	}
	source, refArg := flags.Arg(0), flags.Arg(1)

	var nameOptions []name.Option
	if *insecure {
		nameOptions = append(nameOptions, name.Insecure)
	}
	ref, err := name.ParseReference(refArg, nameOptions...)
	if err != nil {
		return fmt.Errorf("push: invalid reference %q: %w", refArg, err)
	}

	scratch, err := os.MkdirTemp("", "imagetool-push-")
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	defer os.RemoveAll(scratch)
	content, err := loadSource(source, scratch)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	digest, err := push(ctx, content, ref, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return fmt.Errorf("push %s to %s: %w", source, ref, err)
	}
	fmt.Fprintf(stdout, "%s@%s\n", ref.Context().Name(), digest)
	return nil
}

// push uploads content to ref and returns its manifest digest.
func push(ctx context.Context, content pushable, ref name.Reference, options ...remote.Option) (v1.Hash, error) {
	digest, err := content.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	options = append(options, remote.WithContext(ctx))
	if err := remote.Push(ref, content, options...); err != nil {
		return v1.Hash{}, err
	}
	return digest, nil
}

// loadSource opens source for pushing. source is an OCI layout directory, a
// tar file that contains an OCI layout (extracted into scratch, which must
// outlive the push), or a docker-save archive. A layout must hold exactly one
// image or index.
func loadSource(source, scratch string) (pushable, error) {
	info, err := os.Stat(source)
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return loadLayout(source)
	}

	hasLayout, err := archiveHasLayout(source)
	if err != nil {
		return nil, err
	}
	if hasLayout {
		if err := extractLayout(source, scratch); err != nil {
			return nil, err
		}
		return loadLayout(scratch)
	}
	image, err := tarball.ImageFromPath(source, nil)
	if err != nil {
		return nil, fmt.Errorf("read docker-save archive %s: %w", source, err)
	}
	return image, nil
}

func loadLayout(dir string) (pushable, error) {
	index, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("read OCI layout %s: %w", dir, err)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read OCI layout %s: %w", dir, err)
	}
	if len(manifest.Manifests) != 1 {
		return nil, fmt.Errorf("OCI layout %s lists %d manifests in index.json, but push needs exactly one", dir, len(manifest.Manifests))
	}

	descriptor := manifest.Manifests[0]
	switch {
	case descriptor.MediaType.IsImage():
		return index.Image(descriptor.Digest)
	case descriptor.MediaType.IsIndex():
		return index.ImageIndex(descriptor.Digest)
	default:
		return nil, fmt.Errorf("OCI layout %s: manifest %s has media type %q, which is neither an image nor an index", dir, descriptor.Digest, descriptor.MediaType)
	}
}
