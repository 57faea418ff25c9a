package main

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations that containerd's importer and the OCI image layout use to name
// the images of a layout.
const (
	annotationContainerdImageName = "io.containerd.image.name"
	annotationRefName             = "org.opencontainers.image.ref.name"
)

// dockerManifestEntry is one element of a docker-save archive's manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// writeArchiveFile writes image to file as an archive that is both an OCI
// image layout and a docker-save archive. The file is written beside its
// final name and renamed, so a reader never sees a partial archive.
func writeArchiveFile(file string, image v1.Image, tag name.Tag) error {
	partial, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(partial.Name())

	if err := writeArchive(partial, image, tag); err != nil {
		partial.Close()
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := partial.Chmod(0o644); err != nil {
		partial.Close()
		return err
	}
	if err := partial.Close(); err != nil {
		return err
	}
	return os.Rename(partial.Name(), file)
}

// writeArchive writes the image's blobs under blobs/sha256/, an OCI layout's
// oci-layout and index.json, and a docker-save manifest.json that names the
// same blobs. All entries are owned by 0:0 and dated at the Unix epoch.
func writeArchive(w io.Writer, image v1.Image, tag name.Tag) error {
	tw := tar.NewWriter(w)
	writeFile := func(name string, content []byte) error {
		header := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: epoch}
		if err := tw.WriteHeader(header); err != nil {
			return err
		}
		_, err := tw.Write(content)
		return err
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch}); err != nil {
			return err
		}
	}

	manifest, err := image.RawManifest()
	if err != nil {
		return err
	}
	manifestDigest, err := image.Digest()
	if err != nil {
		return err
	}
	mediaType, err := image.MediaType()
	if err != nil {
		return err
	}
	config, err := image.RawConfigFile()
	if err != nil {
		return err
	}
	configDigest, err := image.ConfigName()
	if err != nil {
		return err
	}

	entry := dockerManifestEntry{Config: blobPath(configDigest), RepoTags: []string{tag.Name()}}
	if err := writeFile(entry.Config, config); err != nil {
		return err
	}
	layers, err := image.Layers()
	if err != nil {
		return err
	}
	for _, layer := range layers {
		layerPath, err := writeLayer(tw, layer)
		if err != nil {
			return err
		}
		entry.Layers = append(entry.Layers, layerPath)
	}
	if err := writeFile(blobPath(manifestDigest), manifest); err != nil {
		return err
	}

	if err := writeFile("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	index := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: mediaType,
			Digest:    manifestDigest,
			Size:      int64(len(manifest)),
			Annotations: map[string]string{
				annotationContainerdImageName: tag.Name(),
				annotationRefName:             tag.TagStr(),
			},
		}},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return err
	}
	if err := writeFile("index.json", indexJSON); err != nil {
		return err
	}
	dockerManifest, err := json.Marshal([]dockerManifestEntry{entry})
	if err != nil {
		return err
	}
	if err := writeFile("manifest.json", dockerManifest); err != nil {
		return err
	}
	return tw.Close()
}

func writeLayer(tw *tar.Writer, layer v1.Layer) (string, error) {
	digest, err := layer.Digest()
	if err != nil {
		return "", err
	}
	size, err := layer.Size()
	if err != nil {
		return "", err
	}
	blob, err := layer.Compressed()
	if err != nil {
		return "", err
	}
	defer blob.Close()

	name := blobPath(digest)
	header := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: epoch}
	if err := tw.WriteHeader(header); err != nil {
		return "", err
	}
	if _, err := io.Copy(tw, blob); err != nil {
		return "", fmt.Errorf("copy layer %s: %w", digest, err)
	}
	return name, nil
}

func blobPath(digest v1.Hash) string {
	return "blobs/" + digest.Algorithm + "/" + digest.Hex
}

// archiveHasLayout reports whether the tar file at file contains an OCI image
// layout (an index.json at its root).
func archiveHasLayout(file string) (bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()

	tr := tar.NewReader(f)
	for {
		header, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read %s: %w", file, err)
		}
		if path.Clean(header.Name) == "index.json" {
			return true, nil
		}
	}
}

// extractLayout copies the OCI layout files of the tar file at file (oci-layout,
// index.json and blobs/) into dir. Entries outside the layout are skipped, and
// entries whose names would leave dir are rejected.
func extractLayout(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()

	tr := tar.NewReader(f)
	for {
		header, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", file, err)
		}
		if header.Typeflag != tar.TypeReg {
			continue
		}
		entry := path.Clean(header.Name)
		if path.IsAbs(entry) || entry == ".." || strings.HasPrefix(entry, "../") {
			return fmt.Errorf("read %s: entry %q leaves the archive", file, header.Name)
		}
		if entry != "oci-layout" && entry != "index.json" && !strings.HasPrefix(entry, "blobs/") {
			continue
		}
		if err := extractEntry(tr, filepath.Join(dir, filepath.FromSlash(entry))); err != nil {
			return fmt.Errorf("read %s: %w", file, err)
		}
	}
}

func extractEntry(r io.Reader, target string) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
