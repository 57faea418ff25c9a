// Command imagetool builds small single-layer OCI images from files on the
// host and pushes image archives and OCI layouts to a registry, with no
// container engine. The local environment uses it for the pause image and
// other base images it makes itself.
//
// Usage:
//
//	imagetool build -o FILE -ref REF -add SRC=DST [-add SRC=DST]... [-entrypoint ARG]... [-cmd ARG]...
//	                [-env KEY=VALUE]... [-user USER] [-workdir DIR] [-platform OS/ARCH[/VARIANT]]
//	imagetool push [-insecure] SOURCE REF
//
// build writes an image archive that is both an OCI image layout and a
// docker-save archive (the format of `docker save` since Docker 25), so
// `ctr images import`, crane and this tool's push all read it. push accepts
// such an archive, a plain docker-save archive, or an OCI layout directory, and
// prints the pushed reference with its digest.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "imagetool: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("missing command: use build or push")
	}
	switch args[0] {
	case "build":
		return runBuild(args[1:], stdout, stderr)
	case "push":
		return runPush(args[1:], stdout, stderr)
	default:
		return fmt.Errorf("unknown command %q: use build or push", args[0])
	}
}
