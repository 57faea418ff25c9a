package k8sbackend

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func policyPort(protocol corev1.Protocol, start int32, end *int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(protocol), Port: ptr.To(intstr.FromInt32(start)), EndPort: end}
}

func policyPeer(spaceGUID, appGUID string) []networkingv1.NetworkPolicyPeer {
	return []networkingv1.NetworkPolicyPeer{{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
			"kubernetes.io/metadata.name": "cf-space-" + spaceGUID, "cloudfoundry.org/space_guid": spaceGUID}},
		PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
			"cloudfoundry.org/app_guid": appGUID, "app.kubernetes.io/component": "app"}},
	}}
}

func TestMakeNetworkPolicyObject(t *testing.T) {
	got, err := MakeNetworkPolicy(AppNetworkPolicySpec{
		Installation: "blue", AppGUID: "api", SpaceGUID: "prod",
		Rules: []NetworkPolicyRule{{SourceAppGUID: "web", SourceSpaceGUID: "dev", Protocol: "tcp", StartPort: 8080, EndPort: 8080}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &networkingv1.NetworkPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "c2c-api", Namespace: "cf-space-prod",
			Labels: map[string]string{
				"app.kubernetes.io/managed-by":        "ferry",
				"ferry.cloudfoundry.org/installation": "blue",
				"app.kubernetes.io/component":         "network-policy",
				"cloudfoundry.org/space_guid":         "prod",
				"cloudfoundry.org/app_guid":           "api",
			},
		},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{
				"cloudfoundry.org/app_guid": "api", "app.kubernetes.io/component": "app"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{
					From:  policyPeer("dev", "web"),
					Ports: []networkingv1.NetworkPolicyPort{policyPort(corev1.ProtocolTCP, 8080, nil)},
				},
				// Pods outside the space namespaces, such as the gateway's,
				// keep reaching the app on every port.
				{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{
					MatchExpressions: []metav1.LabelSelectorRequirement{{
						Key: "app.kubernetes.io/component", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"space"}}},
				}}}},
			},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("MakeNetworkPolicy (-want +got):\n%s", diff)
	}
}

func TestMakeNetworkPolicyIngressRules(t *testing.T) {
	tests := []struct {
		name  string
		rules []NetworkPolicyRule
		want  []networkingv1.NetworkPolicyIngressRule
	}{
		{
			name:  "port range gets endPort",
			rules: []NetworkPolicyRule{{SourceAppGUID: "web", SourceSpaceGUID: "dev", Protocol: "udp", StartPort: 5000, EndPort: 5010}},
			want: []networkingv1.NetworkPolicyIngressRule{{From: policyPeer("dev", "web"),
				Ports: []networkingv1.NetworkPolicyPort{policyPort(corev1.ProtocolUDP, 5000, ptr.To[int32](5010))}}},
		},
		{
			name: "one rule per source with sorted unique ports",
			rules: []NetworkPolicyRule{
				{SourceAppGUID: "worker", SourceSpaceGUID: "prod", Protocol: "tcp", StartPort: 9000, EndPort: 9000},
				{SourceAppGUID: "web", SourceSpaceGUID: "dev", Protocol: "udp", StartPort: 53, EndPort: 53},
				{SourceAppGUID: "web", SourceSpaceGUID: "dev", Protocol: "tcp", StartPort: 8080, EndPort: 8081},
				{SourceAppGUID: "web", SourceSpaceGUID: "dev", Protocol: "tcp", StartPort: 8080, EndPort: 8081},
				{SourceAppGUID: "web", SourceSpaceGUID: "dev", Protocol: "tcp", StartPort: 443, EndPort: 443},
			},
			want: []networkingv1.NetworkPolicyIngressRule{
				{From: policyPeer("dev", "web"), Ports: []networkingv1.NetworkPolicyPort{
					policyPort(corev1.ProtocolTCP, 443, nil),
					policyPort(corev1.ProtocolTCP, 8080, ptr.To[int32](8081)),
					policyPort(corev1.ProtocolUDP, 53, nil),
				}},
				{From: policyPeer("prod", "worker"), Ports: []networkingv1.NetworkPolicyPort{
					policyPort(corev1.ProtocolTCP, 9000, nil),
				}},
			},
		},
		{
			name: "an app may reach itself",
			rules: []NetworkPolicyRule{
				{SourceAppGUID: "api", SourceSpaceGUID: "prod", Protocol: "tcp", StartPort: 1, EndPort: 65535},
			},
			want: []networkingv1.NetworkPolicyIngressRule{{From: policyPeer("prod", "api"),
				Ports: []networkingv1.NetworkPolicyPort{policyPort(corev1.ProtocolTCP, 1, ptr.To[int32](65535))}}},
		},
		{
			name: "no rules admit no app",
			want: []networkingv1.NetworkPolicyIngressRule{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MakeNetworkPolicy(AppNetworkPolicySpec{AppGUID: "api", SpaceGUID: "prod", Rules: tt.rules})
			if err != nil {
				t.Fatal(err)
			}
			// The last rule admits pods outside the space namespaces; the
			// object test checks it.
			if diff := cmp.Diff(tt.want, got.Spec.Ingress[:len(got.Spec.Ingress)-1]); diff != "" {
				t.Errorf("ingress (-want +got):\n%s", diff)
			}
			if got.Labels[LabelInstallation] != DefaultInstallation {
				t.Errorf("installation label = %q, want %q", got.Labels[LabelInstallation], DefaultInstallation)
			}
		})
	}
}

func TestMakeNetworkPolicyRejectsBadRules(t *testing.T) {
	tests := []struct {
		name string
		spec AppNetworkPolicySpec
	}{
		{"no destination app", AppNetworkPolicySpec{SpaceGUID: "prod"}},
		{"no destination space", AppNetworkPolicySpec{AppGUID: "api"}},
		{"protocol", AppNetworkPolicySpec{AppGUID: "api", SpaceGUID: "prod",
			Rules: []NetworkPolicyRule{{SourceAppGUID: "web", SourceSpaceGUID: "dev", Protocol: "icmp", StartPort: 1, EndPort: 1}}}},
		{"port zero", AppNetworkPolicySpec{AppGUID: "api", SpaceGUID: "prod",
			Rules: []NetworkPolicyRule{{SourceAppGUID: "web", SourceSpaceGUID: "dev", Protocol: "tcp", StartPort: 0, EndPort: 1}}}},
		{"port above 65535", AppNetworkPolicySpec{AppGUID: "api", SpaceGUID: "prod",
			Rules: []NetworkPolicyRule{{SourceAppGUID: "web", SourceSpaceGUID: "dev", Protocol: "tcp", StartPort: 1, EndPort: 65536}}}},
		{"start after end", AppNetworkPolicySpec{AppGUID: "api", SpaceGUID: "prod",
			Rules: []NetworkPolicyRule{{SourceAppGUID: "web", SourceSpaceGUID: "dev", Protocol: "tcp", StartPort: 90, EndPort: 80}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := MakeNetworkPolicy(tt.spec); err == nil {
				t.Errorf("MakeNetworkPolicy() = %+v, want an error", got)
			}
		})
	}
}
