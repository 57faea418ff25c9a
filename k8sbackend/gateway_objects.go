package k8sbackend

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Labels, annotations and limits of the Gateway objects Ferry writes.
const (
	// ComponentGateway is the LabelComponent value of organizations'
	// Gateways and of cert-manager Certificates.
	ComponentGateway = "gateway"
	// AnnotationClusterIssuer on a domain names the cert-manager
	// ClusterIssuer that issues the domain's certificate when no
	// certificate was uploaded for it. cert-manager reads the same key on
	// annotated Ingresses and Gateways.
	AnnotationClusterIssuer = "cert-manager.io/cluster-issuer"
	// maxListeners is Gateway API's limit on the listeners of one Gateway
	// (v1.6.3 CRD: spec.listeners maxItems).
	maxListeners = 64
	// listenerFieldManagerPrefix starts the field manager of every
	// installation's listeners (ListenerFieldManager).
	listenerFieldManagerPrefix = "ferry-"
)

// CertManagerCertificateGVR is cert-manager's Certificate resource.
var CertManagerCertificateGVR = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}

// ErrTooManyListeners reports a Gateway that would need more listeners
// than Gateway API allows.
var ErrTooManyListeners = errors.New("too many listeners")

// OrgGatewayName is the name of an organization's dedicated Gateway, in
// the main Gateway's namespace.
func OrgGatewayName(orgGUID string) string { return "ferry-org-" + orgGUID }

// ListenerFieldManager is the server-side apply field manager of the
// listeners an installation adds to a shared Gateway. Each installation
// owns only the listeners it applies, so listeners of the operator and of
// other installations stay, and the API server removes the ones an
// installation stops applying.
func ListenerFieldManager(installation string) string {
	return listenerFieldManagerPrefix + installationOrDefault(installation)
}

// ACMESecretName is the TLS Secret that cert-manager writes for a domain,
// and also the name of the domain's Certificate: "acme-" and 8 hex
// characters of SHA-256 over the lower-cased domain.
func ACMESecretName(domain string) string { return "acme-" + shortHash(dnsName(domain)) }

// MakeCertManagerCertificate returns a cert-manager.io/v1 Certificate in
// namespace. It requests a certificate for domain and *.domain from the
// ClusterIssuer issuer, stored in the Secret ACMESecretName(domain).
// Let's Encrypt issues the wildcard name only through a DNS-01 challenge.
func MakeCertManagerCertificate(domain, issuer, namespace, installation string) *unstructured.Unstructured {
	name := ACMESecretName(domain)
	labels := ownerLabels(installation, ComponentGateway)
	annotations := map[string]string{AnnotationDomain: dnsName(domain)}
	spec := map[string]any{
		"secretName": name,
		"dnsNames":   []any{dnsName(domain), "*." + dnsName(domain)},
		"issuerRef":  map[string]any{"name": issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
	}
	annotations[AnnotationSpecHash] = specHash(labels, annotations, spec)

	cert := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": CertManagerCertificateGVR.GroupVersion().String(),
		"kind":       "Certificate",
		"spec":       spec,
	}}
	cert.SetName(name)
	cert.SetNamespace(namespace)
	cert.SetLabels(labels)
	cert.SetAnnotations(annotations)
	return cert
}

// MakeManagedListeners returns the listeners an installation adds to one
// Gateway, sorted by name: the two HTTPS listeners of each domain in tls
// and a port listener for each route in portRoutes. Routes that share a
// protocol and port share one listener. Routes that MakePortListener
// rejects are left out and reported in the joined error, next to the
// listeners of the others. More than maxListeners listeners is an
// ErrTooManyListeners, and then no listeners are returned.
func MakeManagedListeners(tls []DomainTLS, portRoutes []RouteSpec, gw GatewayRef, installation string) ([]gatewayv1.Listener, error) {
	byName := map[gatewayv1.SectionName]gatewayv1.Listener{}
	for _, t := range tls {
		for _, l := range MakeHTTPSListeners(t, gw, installation) {
			byName[l.Name] = l
		}
	}
	var errs []error
	for _, route := range portRoutes {
		route.Installation = installation
		l, err := MakePortListener(route)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		byName[l.Name] = l
	}
	if len(byName) > maxListeners {
		return nil, fmt.Errorf("%w: Gateway %s/%s would need %d listeners, and Gateway API allows %d",
			ErrTooManyListeners, gw.Namespace, gw.Name, len(byName), maxListeners)
	}

	listeners := make([]gatewayv1.Listener, 0, len(byName))
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		listeners = append(listeners, byName[name])
	}
	return listeners, errors.Join(errs...)
}

// MakeListenerApply returns the server-side apply patch that sets an
// installation's listeners on the Gateway gw. It names only the Gateway
// and the listeners, so the patch changes nothing else, and it cannot
// create a missing Gateway, because a Gateway without gatewayClassName is
// invalid. No listeners gives a patch without spec, which removes all of
// the installation's listeners.
func MakeListenerApply(gw GatewayRef, listeners []gatewayv1.Listener) ([]byte, error) {
	patch := map[string]any{
		"apiVersion": gatewayv1.GroupVersion.String(),
		"kind":       "Gateway",
		"metadata":   map[string]any{"name": gw.Name, "namespace": gw.Namespace},
	}
	if len(listeners) > 0 {
		patch["spec"] = map[string]any{"listeners": listeners}
	}
	return json.Marshal(patch)
}

// FerryListenerNames returns the names of the listeners of gw that a
// Ferry installation applied: those owned by a field manager that
// ListenerFieldManager named, read from the Gateway's managed fields.
// A listener that the operator also applied with identical values counts
// as Ferry's.
func FerryListenerNames(gw *gatewayv1.Gateway) map[string]bool {
	names := map[string]bool{}
	for _, entry := range gw.ManagedFields {
		if !strings.HasPrefix(entry.Manager, listenerFieldManagerPrefix) || entry.Operation != metav1.ManagedFieldsOperationApply ||
			entry.FieldsV1 == nil {
			continue
		}
		var fields struct {
			Spec struct {
				Listeners map[string]json.RawMessage `json:"f:listeners"`
			} `json:"f:spec"`
		}
		if err := json.Unmarshal(entry.FieldsV1.GetRawBytes(), &fields); err != nil {
			continue
		}
		// Keys of list items are "k:" followed by the item's key fields
		// as JSON, for listeners {"name":"..."}.
		for key := range fields.Spec.Listeners {
			raw, ok := strings.CutPrefix(key, "k:")
			if !ok {
				continue
			}
			var item struct {
				Name string `json:"name"`
			}
			if json.Unmarshal([]byte(raw), &item) == nil && item.Name != "" {
				names[item.Name] = true
			}
		}
	}
	return names
}

// OrgGatewaySpec is the desired state of an organization's dedicated
// Gateway.
type OrgGatewaySpec struct {
	OrgGUID string
	// Installation owns the Gateway, and "" means DefaultInstallation.
	Installation string
	// Main is the main Gateway as read from the API server. Its HTTP and
	// HTTPS listeners that no Ferry installation added are copied.
	Main *gatewayv1.Gateway
	// Class is the GatewayClass, or "" for Main's.
	Class string
	// TLS lists the organization's private domains with a certificate,
	// each of which gets two HTTPS listeners.
	TLS []DomainTLS
	// HTTPSPort is the port of those HTTPS listeners, or 0 for 443.
	HTTPSPort int32
}

// MakeOrgGateway returns an organization's dedicated Gateway, in the main
// Gateway's namespace. It has copies of the main Gateway's HTTP and HTTPS
// listeners that no Ferry installation added (same names, hostnames,
// ports, protocols and TLS), and the HTTPS listeners of the organization's
// private domains. Every listener admits HTTPRoutes only from the
// organization's space namespaces of this installation. A listener name
// used twice keeps the copy. More than maxListeners listeners is an
// ErrTooManyListeners.
func MakeOrgGateway(spec OrgGatewaySpec) (*gatewayv1.Gateway, error) {
	main := spec.Main
	class := spec.Class
	if class == "" {
		class = string(main.Spec.GatewayClassName)
	}
	allowed := orgSpaceRoutes(spec.Installation, spec.OrgGUID)

	ferryListeners := FerryListenerNames(main)
	var listeners []gatewayv1.Listener
	names := map[gatewayv1.SectionName]bool{}
	for _, l := range main.Spec.Listeners {
		if ferryListeners[string(l.Name)] ||
			(l.Protocol != gatewayv1.HTTPProtocolType && l.Protocol != gatewayv1.HTTPSProtocolType) {
			continue
		}
		listeners = append(listeners, gatewayv1.Listener{
			Name:          l.Name,
			Hostname:      l.Hostname,
			Port:          l.Port,
			Protocol:      l.Protocol,
			TLS:           l.TLS.DeepCopy(),
			AllowedRoutes: allowed.DeepCopy(),
		})
		names[l.Name] = true
	}

	gw := GatewayRef{Namespace: main.Namespace, Name: OrgGatewayName(spec.OrgGUID), HTTPSPort: spec.HTTPSPort}
	for _, t := range spec.TLS {
		for _, l := range MakeHTTPSListeners(t, gw, spec.Installation) {
			if names[l.Name] {
				continue
			}
			l.AllowedRoutes = allowed.DeepCopy()
			listeners = append(listeners, l)
			names[l.Name] = true
		}
	}
	if len(listeners) > maxListeners {
		return nil, fmt.Errorf("%w: the Gateway of organization %s would need %d listeners, and Gateway API allows %d",
			ErrTooManyListeners, spec.OrgGUID, len(listeners), maxListeners)
	}

	labels := ownerLabels(spec.Installation, ComponentGateway)
	labels[LabelOrgGUID] = spec.OrgGUID
	g := &gatewayv1.Gateway{
		TypeMeta: metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "Gateway"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        gw.Name,
			Namespace:   gw.Namespace,
			Labels:      labels,
			Annotations: map[string]string{},
		},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: gatewayv1.ObjectName(class),
			Listeners:        listeners,
		},
	}
	g.Annotations[AnnotationSpecHash] = specHash(g.Labels, g.Annotations, g.Spec)
	return g, nil
}

// orgSpaceRoutes admits HTTPRoutes from the space namespaces of one
// organization of the installation, and no others.
func orgSpaceRoutes(installation, orgGUID string) *gatewayv1.AllowedRoutes {
	allowed := spaceRoutes(installation, "HTTPRoute")
	allowed.Namespaces.Selector.MatchLabels[LabelOrgGUID] = orgGUID
	return allowed
}

// gatewayKey is "namespace/name" of a Gateway.
func gatewayKey(gw GatewayRef) string { return gw.Namespace + "/" + gw.Name }
