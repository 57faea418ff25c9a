package appbits

import (
	"io/fs"
	"strings"
	"unicode/utf8"
)

// Limits of the Linux filesystems the app directory lands on.
const (
	maxNameBytes    = 255
	maxPathBytes    = 4096
	maxSymlinkBytes = 4095
	// maxSymlinkHops is the kernel's limit on symlinks followed while
	// resolving one path (MAXSYMLINKS in Linux).
	maxSymlinkHops = 40
)

type nodeKind int

const (
	kindDir nodeKind = iota
	kindFile
	kindSymlink
)

func (k nodeKind) String() string {
	switch k {
	case kindDir:
		return "directory"
	case kindFile:
		return "file"
	default:
		return "symlink"
	}
}

// node is one path of the app directory before it is written.
type node struct {
	kind nodeKind
	perm fs.FileMode
	// explicit is false for directories that only appear as parents.
	explicit bool
	// target is a symlink's target.
	target string
	// zipIndex is the zip entry of a file or symlink, or -1.
	zipIndex int
	// resource is set for a file that comes from the resource cache.
	resource *Resource
}

// tree is the app directory as the upload describes it, keyed by clean
// relative path. The root is "".
type tree struct {
	nodes map[string]*node
}

func newTree() *tree {
	return &tree{nodes: map[string]*node{"": {kind: kindDir, perm: 0o755, explicit: true}}}
}

// cleanPath validates a zip entry name or resource path and returns it in
// clean form without a trailing slash, and whether it named a directory by
// a trailing slash. The rules keep every path inside the app directory on
// Linux and on Windows: no absolute paths, drive letters or backslashes,
// no ".." components, no NUL bytes, and lengths the filesystem accepts.
func cleanPath(raw string) (string, bool, *InvalidError) {
	if raw == "" {
		return "", false, invalid(raw, "the path is empty")
	}
	if !utf8.ValidString(raw) {
		return "", false, invalid(raw, "the path is not valid UTF-8")
	}
	if strings.ContainsRune(raw, 0) {
		return "", false, invalid(raw, "the path contains a NUL byte")
	}
	if strings.Contains(raw, `\`) {
		return "", false, invalid(raw, "the path contains a backslash: use '/' as the separator")
	}
	if strings.HasPrefix(raw, "/") {
		return "", false, invalid(raw, "the path is absolute: paths must be relative to the app directory")
	}
	if len(raw) >= 2 && raw[1] == ':' && isASCIILetter(raw[0]) {
		return "", false, invalid(raw, "the path starts with a drive letter: paths must be relative to the app directory")
	}
	if len(raw) > maxPathBytes {
		return "", false, invalid(shorten(raw), "the path is longer than %d bytes", maxPathBytes)
	}

	isDir := strings.HasSuffix(raw, "/")
	var parts []string
	for _, part := range strings.Split(raw, "/") {
		switch part {
		case "", ".":
			continue
		case "..":
			return "", false, invalid(raw, "the path contains '..' and would leave the app directory")
		}
		if len(part) > maxNameBytes {
			return "", false, invalid(shorten(raw), "a path component is longer than %d bytes", maxNameBytes)
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "/"), isDir, nil
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// shorten keeps messages readable for absurdly long names.
func shorten(s string) string {
	const keep = 100
	if len(s) <= keep {
		return s
	}
	cut := keep
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// add inserts n at p (a clean path other than the root) and the implicit
// directories above it. Directory entries may repeat, but every other
// collision is an error.
func (t *tree) add(p string, n *node, entry string) *InvalidError {
	parts := strings.Split(p, "/")
	for i := 1; i < len(parts); i++ {
		parent := strings.Join(parts[:i], "/")
		existing, ok := t.nodes[parent]
		if !ok {
			t.nodes[parent] = &node{kind: kindDir, perm: 0o755, zipIndex: -1}
			continue
		}
		if existing.kind != kindDir {
			return invalid(entry, "the path is inside '%s', which is a %s", parent, existing.kind)
		}
	}

	existing, ok := t.nodes[p]
	switch {
	case !ok:
		t.nodes[p] = n
	case existing.kind == kindDir && n.kind == kindDir:
		// A repeated directory entry is harmless, and its last mode wins.
		existing.perm, existing.explicit = n.perm, true
	case existing.kind == kindDir && n.kind != kindDir:
		return invalid(entry, "the path is both a directory and a %s", n.kind)
	default:
		return invalid(entry, "the path appears more than once")
	}
	return nil
}

// checkSymlinks rejects symlinks whose targets are absolute, leave the app
// directory, or loop. Targets are resolved the way the kernel would resolve
// them in the finished directory, where a component that is a symlink of
// the upload is replaced by its own resolved target. So "a -> ." followed
// by "b -> a/.." is caught, although "a/.." looks harmless as text.
func (t *tree) checkSymlinks() *InvalidError {
	for p, n := range t.nodes {
		if n.kind != kindSymlink {
			continue
		}
		if strings.HasPrefix(n.target, "/") {
			return invalid(p, "the symlink target '%s' is absolute: targets must be relative and stay inside the app directory", n.target)
		}
		dir := parentParts(p)
		if _, problem := t.resolve(dir, n.target, 0); problem != "" {
			return invalid(p, "the symlink target '%s' %s", n.target, problem)
		}
	}
	return nil
}

func parentParts(p string) []string {
	parts := strings.Split(p, "/")
	return parts[:len(parts)-1]
}

// resolve walks target from the directory dir (as path components) and
// returns the resolved components, or a problem: leaving the root, or more
// than maxSymlinkHops symlinks.
func (t *tree) resolve(dir []string, target string, hops int) ([]string, string) {
	if strings.HasPrefix(target, "/") {
		return nil, "leads to an absolute path outside the app directory"
	}
	stack := append([]string(nil), dir...)
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return nil, "points outside the app directory"
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, part)
		n, ok := t.nodes[strings.Join(stack, "/")]
		if !ok || n.kind != kindSymlink {
			continue
		}
		if hops >= maxSymlinkHops {
			return nil, "is part of a symlink loop or a chain of more than 40 symlinks"
		}
		resolved, problem := t.resolve(stack[:len(stack)-1], n.target, hops+1)
		if problem != "" {
			return nil, problem
		}
		stack = resolved
	}
	return stack, ""
}
