// Package k8sbackend turns Ferry's Cloud Foundry model into Kubernetes
// objects and reconciles them. The Make* functions are pure translations
// with table tests. The reconcilers and the builder catalog are the thin
// parts that talk to the cluster and the registry.
package k8sbackend

import (
	"strings"
	"time"

	"github.com/ferrycf/ferry/config"
)

// Defaults for settings the configuration file does not carry.
const (
	// DefaultBuildJobTTL keeps a finished staging Job, and with it the
	// staging pod's logs, for an hour.
	DefaultBuildJobTTL = time.Hour
	// DefaultUnschedulableTimeout is how long a staging pod may wait for a
	// node before its build fails.
	DefaultUnschedulableTimeout = 5 * time.Minute

	// stagingPodDeadlineMargin is how much later than the Job's deadline a
	// staging pod's own deadline ends it.
	stagingPodDeadlineMargin = time.Minute
	// stagingPodDeadlineFallback is a staging pod's deadline when staging
	// has no timeout.
	stagingPodDeadlineFallback = 24 * time.Hour
)

// Config is the deployment's settings for the translation functions,
// derived from config.Config by ConfigFrom.
type Config struct {
	// RegistryAddress is host[:port] of the registry as Ferry reaches it.
	RegistryAddress string
	// RegistryClusterAddress is the same registry as pods and the kubelet
	// reach it.
	RegistryClusterAddress string
	// RegistryInsecure allows plain HTTP to the registry for every client.
	RegistryInsecure bool
	// Repository is the path prefix of every image Ferry pushes.
	Repository string
	// RegistryUsername and RegistryPassword are the registry credentials,
	// or "" for an open registry. The password is a secret.
	RegistryUsername string
	RegistryPassword string
	// FerryImage is the image of the staging init container.
	FerryImage string
	// Builders maps each stack name to its CNB builder image.
	Builders map[string]string
	// DefaultStack is the stack of builds that name none.
	DefaultStack string
	// BuildpackAliases maps Cloud Foundry buildpack names, such as
	// go_buildpack, to CNB buildpack ids.
	BuildpackAliases map[string]string
	// StagingTimeout bounds a staging Job's run time.
	StagingTimeout time.Duration
	// StagingMemoryMB is the configured staging memory, which the space
	// namespaces' LimitRanges must allow.
	StagingMemoryMB int64
	// BuildJobTTL is how long a finished staging Job is kept.
	BuildJobTTL time.Duration
	// UnschedulableTimeout is how long a staging pod may stay unscheduled.
	UnschedulableTimeout time.Duration
	// APIURL is Ferry's external URL, given to buildpacks as cf_api.
	APIURL string
	// Installation is the value of LabelInstallation on every object this
	// installation writes; it never touches objects with another value.
	Installation string
	// RoutingEnabled runs the routing reconcilers.
	RoutingEnabled bool
	// Routing holds the settings that turn routes into Kubernetes objects.
	Routing RoutingConfig
	// Gateway is the Gateway HTTP and TCP routes attach to.
	Gateway GatewayRef
}

// RoutingConfig holds the routing settings besides the main Gateway.
type RoutingConfig struct {
	// Mode is config.RoutingModeGateway or config.RoutingModeIngress.
	Mode string
	// IngressClass is the class of Ingress objects in ingress mode.
	IngressClass string
	// UDPGateway is the Gateway UDP routes attach to.
	UDPGateway GatewayRef
	// ManageListeners lets Ferry add HTTPS, TCP and UDP listeners to the
	// Gateways.
	ManageListeners bool
	// OrgGatewayClass is the class of organizations' dedicated Gateways;
	// "" means the main Gateway's class.
	OrgGatewayClass string
	// Internal places the Services of internal routes.
	Internal InternalRouteConfig
}

// ConfigFrom derives the translation settings from Ferry's configuration.
func ConfigFrom(c config.Config) Config {
	builders := map[string]string{}
	for _, b := range c.Staging.Builders {
		builders[b.Stack] = b.Image
	}
	cluster := c.Registry.ClusterAddress
	if cluster == "" {
		cluster = c.Registry.Address
	}
	udpNamespace, udpName := c.Routing.UDPGateway()
	return Config{
		RegistryAddress:        c.Registry.Address,
		RegistryClusterAddress: cluster,
		RegistryInsecure:       c.Registry.Insecure,
		Repository:             strings.Trim(c.Registry.Repository, "/"),
		RegistryUsername:       c.Registry.Username,
		RegistryPassword:       c.Registry.Password,
		FerryImage:             c.Staging.FerryImage,
		Builders:               builders,
		DefaultStack:           c.Staging.DefaultStack,
		BuildpackAliases:       c.Staging.BuildpackAliases,
		StagingTimeout:         c.Staging.Timeout.Duration,
		StagingMemoryMB:        c.Staging.MemoryMB,
		BuildJobTTL:            DefaultBuildJobTTL,
		UnschedulableTimeout:   DefaultUnschedulableTimeout,
		APIURL:                 c.ExternalURL,
		Installation:           c.Kubernetes.Installation,
		RoutingEnabled:         c.Routing.Enabled,
		Gateway: GatewayRef{Namespace: c.Routing.GatewayNamespace, Name: c.Routing.GatewayName,
			HTTPSPort: int32(c.Routing.HTTPSPort)},
		Routing: RoutingConfig{
			Mode:            c.Routing.Mode,
			IngressClass:    c.Routing.IngressClass,
			UDPGateway:      GatewayRef{Namespace: udpNamespace, Name: udpName, HTTPSPort: int32(c.Routing.HTTPSPort)},
			ManageListeners: c.Routing.ManageListeners,
			OrgGatewayClass: c.Routing.OrgGatewayClass,
			Internal: InternalRouteConfig{Namespace: c.Routing.InternalRouteNamespace,
				ClusterDomain: c.Routing.ClusterDomain},
		},
	}
}

// HasRegistryCredentials reports whether pods need a registry Secret.
func (c Config) HasRegistryCredentials() bool { return c.RegistryUsername != "" }

// ClusterRef rewrites an image reference on Ferry's registry address to
// the cluster address, so pods and the kubelet can pull it. Other
// references are returned unchanged.
func (c Config) ClusterRef(ref string) string {
	return swapRegistry(ref, c.RegistryAddress, c.RegistryClusterAddress)
}

// HostRef rewrites an image reference on the cluster address to Ferry's
// own registry address, for reading from Ferry's process. Other
// references are returned unchanged.
func (c Config) HostRef(ref string) string {
	return swapRegistry(ref, c.RegistryClusterAddress, c.RegistryAddress)
}

func swapRegistry(ref, from, to string) string {
	if from == "" || from == to {
		return ref
	}
	if rest, ok := strings.CutPrefix(ref, from+"/"); ok {
		return to + "/" + rest
	}
	return ref
}

// DropletRepository is the repository of an app's droplet images on the
// cluster address, without a tag or digest.
func (c Config) DropletRepository(appGUID string) string {
	return c.RegistryClusterAddress + "/" + c.repositoryPath("droplets", appGUID)
}

// DropletTag is the tag a build's droplet image is exported to, on the
// cluster address.
func (c Config) DropletTag(appGUID, buildGUID string) string {
	return c.DropletRepository(appGUID) + ":" + buildGUID
}

// CacheImage is the build cache image of an app, on the cluster address.
// Every build of the app shares it.
func (c Config) CacheImage(appGUID string) string {
	return c.RegistryClusterAddress + "/" + c.repositoryPath("cache", appGUID)
}

func (c Config) repositoryPath(kind, guid string) string {
	if c.Repository == "" {
		return kind + "/" + guid
	}
	return c.Repository + "/" + kind + "/" + guid
}

// Stack returns the stack a build stages on: its own, or the default.
func (c Config) Stack(requested string) string {
	if requested != "" {
		return requested
	}
	return c.DefaultStack
}
