package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is the timestamp of every file, history entry and config in a built
// image, so the same inputs always give the same digest.
var epoch = time.Unix(0, 0).UTC()

// fileMapping is one -add flag: a regular file on the host and the absolute
// path it gets in the image.
type fileMapping struct {
	source string
	target string
}

func parseFileMapping(value string) (fileMapping, error) {
	source, target, ok := strings.Cut(value, "=")
	if !ok || source == "" || target == "" {
		return fileMapping{}, fmt.Errorf("invalid -add %q: expected SRC=DST", value)
	}
	if !path.IsAbs(target) {
		return fileMapping{}, fmt.Errorf("invalid -add %q: the image path %q must be absolute", value, target)
	}
	target = path.Clean(target)
	if target == "/" {
		return fileMapping{}, fmt.Errorf("invalid -add %q: the image path must name a file, not /", value)
	}
	return fileMapping{source: source, target: target}, nil
}

// imageSpec describes the single-layer image that build writes.
type imageSpec struct {
	files      []fileMapping
	entrypoint []string
	cmd        []string
	env        []string
	user       string
	workdir    string
	platform   v1.Platform
}

// stringList collects a repeatable string flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, " ") }

func (s *stringList) Set(value string) error {
	*s = append(*s, value)
	return nil
}

func runBuild(args []string, stdout, stderr io.Writer) error {
	var adds, entrypoint, cmd, env stringList
	flags := flag.NewFlagSet("imagetool build", flag.ContinueOnError)
	flags.SetOutput(stderr)
	output := flags.String("o", "", "path of the image archive to write (required)")
	ref := flags.String("ref", "", "image reference recorded in the archive, e.g. 127.0.0.1:5000/pause:3.10 (required)")
	flags.Var(&adds, "add", "SRC=DST: copy the host file SRC to the absolute image path DST; repeatable")
	flags.Var(&entrypoint, "entrypoint", "one entrypoint argument; repeat for each argument")
	flags.Var(&cmd, "cmd", "one default command argument; repeat for each argument")
	flags.Var(&env, "env", "KEY=VALUE environment variable; repeatable")
	user := flags.String("user", "", "user (and group) the image runs as, e.g. 65535:65535")
	workdir := flags.String("workdir", "", "working directory of the image's process")
	platform := flags.String("platform", "linux/"+runtime.GOARCH, "OS/ARCH[/VARIANT] recorded in the image config")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("build: unexpected arguments %q", flags.Args())
	}
	if *output == "" || *ref == "" || len(adds) == 0 {
		return errors.New("build: -o, -ref and at least one -add are required")
	}

	tag, err := name.NewTag(*ref, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("build: invalid -ref %q: it must be a tagged reference: %w", *ref, err)
	}
	parsedPlatform, err := v1.ParsePlatform(*platform)
	if err != nil {
		return fmt.Errorf("build: invalid -platform %q: %w", *platform, err)
	}
	for _, variable := range env {
		if key, _, ok := strings.Cut(variable, "="); !ok || key == "" {
			return fmt.Errorf("build: invalid -env %q: expected KEY=VALUE", variable)
		}
	}
	spec := imageSpec{
		entrypoint: entrypoint,
		cmd:        cmd,
		env:        env,
		user:       *user,
		workdir:    *workdir,
		platform:   *parsedPlatform,
	}
	for _, add := range adds {
		mapping, err := parseFileMapping(add)
		if err != nil {
			return fmt.Errorf("build: %w", err)
		}
		spec.files = append(spec.files, mapping)
	}

	image, err := buildImage(spec)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if err := writeArchiveFile(*output, image, tag); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	digest, err := image.Digest()
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	fmt.Fprintf(stdout, "%s@%s\n", tag.Name(), digest)
	return nil
}

// buildImage returns an OCI image with one gzip layer holding spec.files, and
// a config with spec's process settings and platform. All timestamps are the
// Unix epoch.
func buildImage(spec imageSpec) (v1.Image, error) {
	layerBytes, err := layerTar(spec.files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("create layer: %w", err)
	}

	image := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	image = mutate.ConfigMediaType(image, types.OCIConfigJSON)
	image, err = mutate.Append(image, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "imagetool build"},
	})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}

	config, err := image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	config = config.DeepCopy()
	config.Created = v1.Time{Time: epoch}
	config.OS = spec.platform.OS
	config.Architecture = spec.platform.Architecture
	config.Variant = spec.platform.Variant
	config.Config.Entrypoint = spec.entrypoint
	config.Config.Cmd = spec.cmd
	config.Config.Env = spec.env
	config.Config.User = spec.user
	config.Config.WorkingDir = spec.workdir
	image, err = mutate.ConfigFile(image, config)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	return image, nil
}

// layerTar returns an uncompressed tar stream with the mapped files and
// their parent directories, all owned by 0:0. Files keep the permission bits
// of their source. A later mapping to the same image path replaces an
// earlier one.
func layerTar(files []fileMapping) ([]byte, error) {
	byTarget := map[string]fileMapping{}
	for _, file := range files {
		byTarget[file.target] = file
	}
	targets := make([]string, 0, len(byTarget))
	for target := range byTarget {
		targets = append(targets, target)
	}
	sort.Strings(targets)

	dirs := map[string]bool{}
	for _, target := range targets {
		for dir := path.Dir(target); dir != "/"; dir = path.Dir(dir) {
			if _, isFile := byTarget[dir]; isFile {
				return nil, fmt.Errorf("image path %s is both a file and the parent of %s", dir, target)
			}
			dirs[dir] = true
		}
	}
	dirList := make([]string, 0, len(dirs))
	for dir := range dirs {
		dirList = append(dirList, dir)
	}
	sort.Strings(dirList)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, dir := range dirList {
		header := &tar.Header{
			Typeflag: tar.TypeDir,
			Name:     strings.TrimPrefix(dir, "/") + "/",
			Mode:     0o755,
			ModTime:  epoch,
			Format:   tar.FormatPAX,
		}
		if err := tw.WriteHeader(header); err != nil {
			return nil, err
		}
	}
	for _, target := range targets {
		if err := addFile(tw, byTarget[target]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func addFile(tw *tar.Writer, file fileMapping) error {
	info, err := os.Stat(file.source)
	if err != nil {
		return fmt.Errorf("add %s: %w", file.source, err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("add %s: not a regular file", file.source)
	}
	content, err := os.ReadFile(file.source)
	if err != nil {
		return fmt.Errorf("add %s: %w", file.source, err)
	}
	header := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     strings.TrimPrefix(file.target, "/"),
		Mode:     int64(info.Mode().Perm()),
		Size:     int64(len(content)),
		ModTime:  epoch,
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(header); err != nil {
		return fmt.Errorf("add %s: %w", file.source, err)
	}
	if _, err := tw.Write(content); err != nil {
		return fmt.Errorf("add %s: %w", file.source, err)
	}
	return nil
}
