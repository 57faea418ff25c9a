package k8sbackend

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ferrycf/ferry/store"
)

// BuildMetadataLabel is the label the CNB lifecycle writes on every image
// it exports, with the process types and the buildpacks that took part.
const BuildMetadataLabel = "io.buildpacks.build.metadata"

// buildMetadata is the part of BuildMetadataLabel Ferry reads.
type buildMetadata struct {
	Buildpacks []struct {
		ID       string `json:"id"`
		Version  string `json:"version"`
		Homepage string `json:"homepage"`
	} `json:"buildpacks"`
	Processes []struct {
		Type    string   `json:"type"`
		Command []string `json:"command"`
		Args    []string `json:"args"`
	} `json:"processes"`
}

// BuildpackDroplet returns the droplet of a finished buildpack build.
// image is the exported image pinned by digest, as the cluster pulls it,
// and labels are the image's config labels.
func BuildpackDroplet(guid string, b store.Build, image string, labels map[string]string, cfg Config) (store.Droplet, error) {
	raw, ok := labels[BuildMetadataLabel]
	if !ok {
		return store.Droplet{}, fmt.Errorf("droplet image %s has no %s label", image, BuildMetadataLabel)
	}
	var md buildMetadata
	if err := json.Unmarshal([]byte(raw), &md); err != nil {
		return store.Droplet{}, fmt.Errorf("droplet image %s: decode the %s label: %w", image, BuildMetadataLabel, err)
	}

	processTypes := map[string]string{}
	for _, p := range md.Processes {
		if p.Type == "" {
			continue
		}
		processTypes[p.Type] = shellJoin(append(slices.Clone(p.Command), p.Args...))
	}
	buildpacks := make([]store.DropletBuildpack, 0, len(md.Buildpacks))
	for _, bp := range md.Buildpacks {
		buildpacks = append(buildpacks, store.DropletBuildpack{Name: bp.ID, BuildpackName: bp.ID, Version: bp.Version})
	}
	return store.Droplet{
		GUID:          guid,
		AppGUID:       b.AppGUID,
		PackageGUID:   b.PackageGUID,
		BuildGUID:     b.GUID,
		State:         store.DropletStateStaged,
		LifecycleType: store.LifecycleBuildpack,
		Image:         image,
		ProcessTypes:  processTypes,
		Buildpacks:    buildpacks,
		Stack:         cfg.Stack(b.Stack),
	}, nil
}

// shellJoin renders a command line for display, quoting words that a
// POSIX shell would split or expand.
func shellJoin(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		if w != "" && !strings.ContainsAny(w, " \t\n'\"\\$`*?[]{}()<>|&;#~!") {
			quoted[i] = w
			continue
		}
		quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}

// DockerExecutionMetadata is a docker droplet's record of its image, in
// the JSON form of Cloud Controller's execution_metadata.
type DockerExecutionMetadata struct {
	Cmd          []string     `json:"cmd,omitempty"`
	Entrypoint   []string     `json:"entrypoint,omitempty"`
	Workdir      string       `json:"workdir,omitempty"`
	User         string       `json:"user,omitempty"`
	ExposedPorts []DockerPort `json:"ports,omitempty"`
}

// DockerPort is one port an image exposes.
type DockerPort struct {
	Port     uint16 `json:"Port"`
	Protocol string `json:"Protocol"`
}

// DockerDroplet returns the droplet of a docker build: the user's image
// pinned by digest, with its start command and exposed ports read from the
// image config. image must already be on the cluster address.
func DockerDroplet(guid string, b store.Build, image string, cfg v1.Config) (store.Droplet, error) {
	meta := DockerExecutionMetadata{
		Cmd:        cfg.Cmd,
		Entrypoint: cfg.Entrypoint,
		Workdir:    cfg.WorkingDir,
		User:       cfg.User,
	}
	ports, err := exposedPorts(cfg.ExposedPorts)
	if err != nil {
		return store.Droplet{}, fmt.Errorf("image %s: %w", image, err)
	}
	meta.ExposedPorts = ports
	raw, err := json.Marshal(meta)
	if err != nil {
		return store.Droplet{}, fmt.Errorf("image %s: encode execution metadata: %w", image, err)
	}
	return store.Droplet{
		GUID:              guid,
		AppGUID:           b.AppGUID,
		PackageGUID:       b.PackageGUID,
		BuildGUID:         b.GUID,
		State:             store.DropletStateStaged,
		LifecycleType:     store.LifecycleDocker,
		Image:             image,
		ProcessTypes:      map[string]string{"web": shellJoin(append(slices.Clone(cfg.Entrypoint), cfg.Cmd...))},
		ExecutionMetadata: string(raw),
	}, nil
}

// exposedPorts parses ExposedPorts keys such as "8080/tcp" or "53/udp",
// sorted by port and protocol.
func exposedPorts(exposed map[string]struct{}) ([]DockerPort, error) {
	ports := []DockerPort{}
	for key := range exposed {
		number, protocol, found := strings.Cut(key, "/")
		if !found {
			protocol = "tcp"
		}
		n, err := strconv.ParseUint(number, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("exposed port %q is not a port number from 1 to 65535", key)
		}
		ports = append(ports, DockerPort{Port: uint16(n), Protocol: strings.ToLower(protocol)})
	}
	slices.SortFunc(ports, func(a, b DockerPort) int {
		if a.Port != b.Port {
			return int(a.Port) - int(b.Port)
		}
		return strings.Compare(a.Protocol, b.Protocol)
	})
	if len(ports) == 0 {
		return nil, nil
	}
	return ports, nil
}
