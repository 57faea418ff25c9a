package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const stageFetchUsage = `usage: ferry stage-fetch --image REF --dir DIR [flags]

Fetches a package image into DIR for staging: it pulls the image, unpacks
its file system with file modes preserved, and rejects entries that would
land outside DIR. It runs as the init container of a staging Job.
`

// stagingPlatform is the platform staging pulls packages for.
var stagingPlatform = v1.Platform{OS: "linux", Architecture: "amd64"}

// buildpackRef matches a CNB buildpack id and version, "id@version".
var buildpackRef = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._/-]*)@([A-Za-z0-9][A-Za-z0-9.+_-]*)$`)

// stageFetchOptions are the flags of ferry stage-fetch.
type stageFetchOptions struct {
	image       string
	dir         string
	envFile     string
	platformDir string
	orderFile   string
	buildpacks  []string
	insecure    []string
}

type repeated struct{ values *[]string }

func (r repeated) String() string {
	if r.values == nil {
		return ""
	}
	return strings.Join(*r.values, ",")
}

func (r repeated) Set(v string) error {
	*r.values = append(*r.values, v)
	return nil
}

func parseStageFetch(args []string, stderr io.Writer) (stageFetchOptions, error) {
	var o stageFetchOptions
	fs := flag.NewFlagSet("stage-fetch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, stageFetchUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.image, "image", "", "package image reference to fetch (required)")
	fs.StringVar(&o.dir, "dir", "", "directory to unpack the package into; it must exist (required)")
	fs.StringVar(&o.envFile, "env-file", "", "JSON object of staging environment variables to write as CNB platform env files")
	fs.StringVar(&o.platformDir, "platform-dir", "/platform", "CNB platform directory; variables go to its env subdirectory")
	fs.StringVar(&o.orderFile, "order-file", "", "path of a CNB order.toml to write with the --buildpack group")
	fs.Var(repeated{&o.buildpacks}, "buildpack", "buildpack ID@VERSION for the order file, in order; repeat for more")
	fs.Var(repeated{&o.insecure}, "insecure-registry", "registry host[:port] to reach over plain HTTP; repeat for more")

	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.image == "":
		return o, errors.New("--image is required: give the package image reference")
	case o.dir == "":
		return o, errors.New("--dir is required: give the directory to unpack into")
	case len(o.buildpacks) > 0 && o.orderFile == "":
		return o, errors.New("--buildpack needs --order-file: give the path of the order.toml to write")
	}

	for _, bp := range o.buildpacks {
		if !buildpackRef.MatchString(bp) {
			return o, fmt.Errorf("--buildpack %q is invalid: use ID@VERSION, such as ferry/python@0.1.0", bp)
		}
	}
	return o, nil
}

// runStageFetch is the stage-fetch command. Its output is part of the
// staging log the user reads, so each step prints one line. An error is
// one line too, which the build error quotes.
func runStageFetch(args []string, stdout, stderr io.Writer) error {
	o, err := parseStageFetch(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stage-fetch: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Fprintf(stdout, "Downloading the app package %s\n", o.image)
	files, err := fetchPackage(ctx, o)
	if err != nil {
		return fmt.Errorf("stage-fetch: %w", err)
	}
	fmt.Fprintf(stdout, "Unpacked %d entries into %s\n", files, o.dir)

	if o.envFile != "" {
		n, err := writePlatformEnv(o.envFile, o.platformDir)
		if err != nil {
			return fmt.Errorf("stage-fetch: %w", err)
		}
		fmt.Fprintf(stdout, "Wrote %d staging environment variables\n", n)
	}
	if o.orderFile != "" {
		if err := writeOrder(o.orderFile, o.buildpacks); err != nil {
			return fmt.Errorf("stage-fetch: %w", err)
		}
		fmt.Fprintf(stdout, "Buildpacks: %s\n", strings.Join(o.buildpacks, ", "))
	}
	return nil
}

// fetchPackage pulls the package image and unpacks its flattened file
// system into o.dir. Credentials come from DOCKER_CONFIG when set.
func fetchPackage(ctx context.Context, o stageFetchOptions) (int, error) {
	var opts []name.Option
	ref, err := name.ParseReference(o.image)
	if err != nil {
		return 0, fmt.Errorf("image reference %q is invalid: %w", o.image, err)
	}
	if slices.Contains(o.insecure, ref.Context().RegistryStr()) {
		opts = append(opts, name.Insecure)
		if ref, err = name.ParseReference(o.image, opts...); err != nil {
			return 0, fmt.Errorf("image reference %q is invalid: %w", o.image, err)
		}
	}
	img, err := remote.Image(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithPlatform(stagingPlatform))
	if err != nil {
		return 0, fmt.Errorf("pull %s: %w", o.image, err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	n, err := unpack(rc, o.dir)
	if err != nil {
		return n, fmt.Errorf("unpack %s: %w", o.image, err)
	}
	return n, nil
}

// unpack writes the tar stream r into dir and returns the number of
// entries written. Every operation goes through an os.Root, so no entry,
// not even through a symbolic link, is written outside dir. Entries whose
// name or link target leaves dir, and device and FIFO entries, are
// rejected. Modes keep their permission bits; set-id and sticky bits are
// dropped. Directory modes are applied last, so a read-only directory
// can still receive its entries.
func unpack(r io.Reader, dir string) (int, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()

	type dirMode struct {
		name string
		mode fs.FileMode
	}
	var dirs []dirMode
	n := 0
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, fmt.Errorf("read the package: %w", err)
		}
		entry, err := entryName(hdr.Name)
		if err != nil {
			return n, err
		}
		if entry == "." {
			continue
		}
		perm := fs.FileMode(hdr.Mode).Perm()

		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(entry, 0o700); err != nil {
				return n, fmt.Errorf("create directory %s: %w", entry, err)
			}
			dirs = append(dirs, dirMode{entry, perm})
		case tar.TypeReg:
			if err := writeEntry(root, entry, perm, tr); err != nil {
				return n, err
			}
		case tar.TypeSymlink:
			if err := linkInside(entry, hdr.Linkname); err != nil {
				return n, err
			}
			if err := replaceWith(root, entry, func() error { return root.Symlink(hdr.Linkname, entry) }); err != nil {
				return n, fmt.Errorf("create symbolic link %s: %w", entry, err)
			}
		case tar.TypeLink:
			target, err := entryName(hdr.Linkname)
			if err != nil {
				return n, fmt.Errorf("hard link %s: %w", entry, err)
			}
			if err := replaceWith(root, entry, func() error { return root.Link(target, entry) }); err != nil {
				return n, fmt.Errorf("create hard link %s: %w", entry, err)
			}
		default:
			return n, fmt.Errorf("entry %s has type %q: packages may contain only files, directories and links", entry, hdr.Typeflag)
		}
		n++
	}

	// Children first, so a directory without write permission is closed
	// only after everything inside it exists.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := root.Chmod(dirs[i].name, dirs[i].mode); err != nil {
			return n, fmt.Errorf("set the mode of %s: %w", dirs[i].name, err)
		}
	}
	return n, nil
}

// entryName cleans a tar entry name into a path relative to the unpack
// directory, rejecting names that are absolute or climb out of it.
func entryName(raw string) (string, error) {
	if raw == "" || strings.ContainsRune(raw, 0) {
		return "", fmt.Errorf("entry name %q is invalid", raw)
	}
	if path.IsAbs(raw) {
		return "", fmt.Errorf("entry %s has an absolute path: packages may contain only relative paths", raw)
	}
	clean := path.Clean(raw)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("entry %s leaves the app directory", raw)
	}
	return clean, nil
}

// linkInside rejects a symbolic link at entry whose target would resolve
// outside the unpack directory.
func linkInside(entry, target string) error {
	if target == "" || path.IsAbs(target) {
		return fmt.Errorf("symbolic link %s points to %q, outside the app directory", entry, target)
	}
	resolved := path.Join(path.Dir(entry), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return fmt.Errorf("symbolic link %s points to %q, outside the app directory", entry, target)
	}
	return nil
}

// writeEntry writes a regular file, replacing any earlier entry of the
// same name, as a later tar entry overrides an earlier one.
func writeEntry(root *os.Root, entry string, perm fs.FileMode, body io.Reader) error {
	if err := ensureParent(root, entry); err != nil {
		return err
	}
	if err := removeNonDir(root, entry); err != nil {
		return err
	}
	f, err := root.OpenFile(entry, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm|0o200)
	if err != nil {
		return fmt.Errorf("create %s: %w", entry, err)
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", entry, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", entry, err)
	}
	// The create mode passed the umask; set the entry's own.
	if err := root.Chmod(entry, perm); err != nil {
		return fmt.Errorf("set the mode of %s: %w", entry, err)
	}
	return nil
}

// replaceWith removes a non-directory at entry and runs create.
func replaceWith(root *os.Root, entry string, create func() error) error {
	if err := ensureParent(root, entry); err != nil {
		return err
	}
	if err := removeNonDir(root, entry); err != nil {
		return err
	}
	return create()
}

func ensureParent(root *os.Root, entry string) error {
	if parent := path.Dir(entry); parent != "." {
		if err := root.MkdirAll(parent, 0o755); err != nil {
			return fmt.Errorf("create directory %s: %w", parent, err)
		}
	}
	return nil
}

func removeNonDir(root *os.Root, entry string) error {
	info, err := root.Lstat(entry)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect %s: %w", entry, err)
	}
	if info.IsDir() {
		return fmt.Errorf("entry %s replaces a directory with a file", entry)
	}
	if err := root.Remove(entry); err != nil {
		return fmt.Errorf("replace %s: %w", entry, err)
	}
	return nil
}

// writePlatformEnv writes each variable of the JSON object in envFile to
// <platformDir>/env/<NAME>, the CNB platform convention for staging
// environment variables, and returns how many it wrote. It never prints a
// value.
func writePlatformEnv(envFile, platformDir string) (int, error) {
	raw, err := os.ReadFile(envFile)
	if err != nil {
		return 0, fmt.Errorf("read the staging environment: %w", err)
	}
	var env map[string]string
	if err := json.Unmarshal(raw, &env); err != nil {
		return 0, errors.New("read the staging environment: the file is not a JSON object of strings")
	}
	envDir := path.Join(platformDir, "env")
	if err := os.MkdirAll(envDir, 0o755); err != nil {
		return 0, fmt.Errorf("create %s: %w", envDir, err)
	}
	root, err := os.OpenRoot(envDir)
	if err != nil {
		return 0, err
	}
	defer root.Close()

	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if k == "" || k == "." || k == ".." || strings.ContainsAny(k, "/\x00=") {
			return 0, fmt.Errorf("staging environment variable name %q cannot be a file name", k)
		}
		if err := root.WriteFile(k, []byte(env[k]), 0o640); err != nil {
			return 0, fmt.Errorf("write staging environment variable %s: %w", k, err)
		}
	}
	return len(names), nil
}

// writeOrder writes a CNB order.toml with one group of the buildpacks, in
// order, each required to pass detection.
func writeOrder(file string, buildpacks []string) error {
	var b strings.Builder
	b.WriteString("[[order]]\n")
	for _, bp := range buildpacks {
		m := buildpackRef.FindStringSubmatch(bp)
		if m == nil {
			return fmt.Errorf("buildpack %q is invalid: use ID@VERSION", bp)
		}
		// The pattern admits no character TOML would need escaped.
		fmt.Fprintf(&b, "  [[order.group]]\n    id = %q\n    version = %q\n", m[1], m[2])
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}
