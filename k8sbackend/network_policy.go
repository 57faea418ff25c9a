package k8sbackend

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// ComponentNetworkPolicy is the component label of the NetworkPolicies
// that Cloud Foundry network policies become.
const ComponentNetworkPolicy = "network-policy"

// LabelNamespaceName is the label the API server sets on every namespace
// to its name (Kubernetes 1.22 and later). Only the API server sets it, so
// a namespace selector on it cannot match a namespace that copied labels.
const LabelNamespaceName = "kubernetes.io/metadata.name"

// NetworkPolicyName is the name of the NetworkPolicy that admits traffic to
// the app appGUID, in its space's namespace.
func NetworkPolicyName(appGUID string) string { return "c2c-" + appGUID }

// AppNetworkPolicySpec is every network policy whose destination is one
// app.
type AppNetworkPolicySpec struct {
	Installation string
	// AppGUID and SpaceGUID are the destination app and its space.
	AppGUID   string
	SpaceGUID string
	Rules     []NetworkPolicyRule
}

// NetworkPolicyRule allows the pods of the source app to reach the
// destination app on Protocol, ports StartPort to EndPort inclusive.
type NetworkPolicyRule struct {
	SourceAppGUID   string
	SourceSpaceGUID string
	// Protocol is "tcp" or "udp", as Cloud Foundry's policy API names it.
	Protocol  string
	StartPort int32
	EndPort   int32
}

// appPodLabels select the pods that run an app's processes. Staging pods
// carry another component, so they neither receive nor send policy traffic.
func appPodLabels(appGUID string) map[string]string {
	return map[string]string{LabelAppGUID: appGUID, LabelComponent: ComponentApp}
}

// MakeNetworkPolicy returns the NetworkPolicy that admits the traffic of
// spec's rules to the destination app's pods. It has one ingress rule per
// source app, which selects the source's pods by app GUID within the
// source space's namespace, and lists every port range allowed from that
// source.
//
// A NetworkPolicy that selects a pod isolates it: the pod then accepts only
// the traffic some NetworkPolicy allows, and traffic from its own node. So
// the last rule admits every pod outside the space namespaces of all Ferry
// installations, such as the Gateway implementation's pods. Other apps'
// pods reach the destination only through a network policy, as on Cloud
// Foundry.
func MakeNetworkPolicy(spec AppNetworkPolicySpec) (*networkingv1.NetworkPolicy, error) {
	if spec.AppGUID == "" || spec.SpaceGUID == "" {
		return nil, fmt.Errorf("network policy: destination app %q or its space %q is missing", spec.AppGUID, spec.SpaceGUID)
	}
	type source struct{ space, app string }
	portsBySource := map[source][]networkingv1.NetworkPolicyPort{}
	for _, rule := range spec.Rules {
		port, err := networkPolicyPort(rule)
		if err != nil {
			return nil, fmt.Errorf("network policy from app %s to app %s: %w", rule.SourceAppGUID, spec.AppGUID, err)
		}
		key := source{space: rule.SourceSpaceGUID, app: rule.SourceAppGUID}
		portsBySource[key] = append(portsBySource[key], port)
	}

	sources := slices.SortedFunc(maps.Keys(portsBySource), func(a, b source) int {
		return cmp.Or(cmp.Compare(a.space, b.space), cmp.Compare(a.app, b.app))
	})
	ingress := make([]networkingv1.NetworkPolicyIngressRule, 0, len(sources)+1)
	for _, s := range sources {
		ports := portsBySource[s]
		slices.SortFunc(ports, comparePolicyPorts)
		ports = slices.CompactFunc(ports, func(a, b networkingv1.NetworkPolicyPort) bool { return comparePolicyPorts(a, b) == 0 })
		ingress = append(ingress, networkingv1.NetworkPolicyIngressRule{
			From: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
					LabelNamespaceName: SpaceNamespace(s.space),
					LabelSpaceGUID:     s.space,
				}},
				PodSelector: &metav1.LabelSelector{MatchLabels: appPodLabels(s.app)},
			}},
			Ports: ports,
		})
	}

	ingress = append(ingress, networkingv1.NetworkPolicyIngressRule{
		From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: outsideSpaceNamespaces()}},
	})

	labels := ownerLabels(spec.Installation, ComponentNetworkPolicy)
	labels[LabelSpaceGUID] = spec.SpaceGUID
	labels[LabelAppGUID] = spec.AppGUID
	return &networkingv1.NetworkPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      NetworkPolicyName(spec.AppGUID),
			Namespace: SpaceNamespace(spec.SpaceGUID),
			Labels:    labels,
		},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: appPodLabels(spec.AppGUID)},
			Ingress:     ingress,
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}, nil
}

// outsideSpaceNamespaces selects every namespace that is not the space
// namespace of a Ferry installation, including namespaces without a
// component label.
func outsideSpaceNamespaces() *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: LabelComponent, Operator: metav1.LabelSelectorOpNotIn, Values: []string{ComponentSpace},
	}}}
}

// networkPolicyPort converts a rule's protocol and port range. A range of
// one port has no endPort, which is how the API server stores it.
func networkPolicyPort(rule NetworkPolicyRule) (networkingv1.NetworkPolicyPort, error) {
	var protocol corev1.Protocol
	switch rule.Protocol {
	case "tcp":
		protocol = corev1.ProtocolTCP
	case "udp":
		protocol = corev1.ProtocolUDP
	default:
		return networkingv1.NetworkPolicyPort{}, fmt.Errorf("protocol %q is not tcp or udp", rule.Protocol)
	}
	if rule.StartPort < 1 || rule.EndPort > 65535 || rule.StartPort > rule.EndPort {
		return networkingv1.NetworkPolicyPort{}, fmt.Errorf("port range %d-%d is not within 1-65535 with start <= end", rule.StartPort, rule.EndPort)
	}
	port := networkingv1.NetworkPolicyPort{Protocol: &protocol, Port: ptr.To(intstr.FromInt32(rule.StartPort))}
	if rule.EndPort > rule.StartPort {
		port.EndPort = ptr.To(rule.EndPort)
	}
	return port, nil
}

// comparePolicyPorts orders ports by protocol, start and end. It expects
// ports that networkPolicyPort made, which have a protocol and a numeric
// start.
func comparePolicyPorts(a, b networkingv1.NetworkPolicyPort) int {
	return cmp.Or(
		cmp.Compare(*a.Protocol, *b.Protocol),
		cmp.Compare(a.Port.IntVal, b.Port.IntVal),
		cmp.Compare(ptr.Deref(a.EndPort, 0), ptr.Deref(b.EndPort, 0)),
	)
}
