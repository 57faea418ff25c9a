package k8sbackend

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
	"github.com/ferrycf/ferry/tlscert"
)

// certManagerCRD is a minimal stand-in for cert-manager's Certificate
// CRD: the group, version and kind cert-manager v1 serves, with a schema
// that requires the fields Ferry writes.
const certManagerCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: certificates.cert-manager.io
spec:
  group: cert-manager.io
  scope: Namespaced
  names:
    plural: certificates
    singular: certificate
    kind: Certificate
    listKind: CertificateList
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [secretName, issuerRef]
            properties:
              secretName:
                type: string
              dnsNames:
                type: array
                items:
                  type: string
              issuerRef:
                type: object
                required: [name]
                properties:
                  name:
                    type: string
                  kind:
                    type: string
                  group:
                    type: string
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
`

// gatewayFixture is the store side of the gateway reconciler test: an
// organization with a dedicated gateway and a private domain with an
// uploaded certificate, a shared domain with a cluster issuer, and a TCP
// and a UDP route.
type gatewayFixture struct {
	st         *store.Store
	sealer     *tlscert.Sealer
	org        string
	space      string
	cert       TLSCertificateSpec
	acmeDomain string
	tcpRoute   string
}

func newGatewayFixture(t *testing.T) gatewayFixture {
	t.Helper()
	ctx := t.Context()
	st := pgtest.NewStore(t)
	f := gatewayFixture{st: st, acmeDomain: "acme.example.com"}

	key := make([]byte, tlscert.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	var err error
	if f.sealer, err = tlscert.NewSealer(key); err != nil {
		t.Fatal(err)
	}

	org, err := store.CreateOrganization(ctx, st.DB(), store.Organization{GUID: uuid.NewString(), Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	f.org = org.GUID
	sp, err := store.CreateSpace(ctx, st.DB(), store.Space{GUID: uuid.NewString(), Name: "dev", OrganizationGUID: f.org})
	if err != nil {
		t.Fatal(err)
	}
	f.space = sp.GUID
	if _, err := st.DB().ExecContext(ctx, `UPDATE organizations SET dedicated_gateway = true WHERE guid = $1`, f.org); err != nil {
		t.Fatal(err)
	}

	if err := st.EnsureDefaultRouting(ctx, "apps.example.com", "apps.internal", "1024-1033"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateDomain(ctx, st.DB(), store.Domain{GUID: uuid.NewString(), Name: "shop.example.org",
		OrganizationGUID: f.org}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateDomain(ctx, st.DB(), store.Domain{GUID: uuid.NewString(), Name: f.acmeDomain,
		Annotations: map[string]string{AnnotationClusterIssuer: "letsencrypt"}}); err != nil {
		t.Fatal(err)
	}
	groups, err := st.RouterGroups(ctx, store.DefaultTCPRouterGroup)
	if err != nil || len(groups) != 1 {
		t.Fatalf("router groups = %v, %v; want the default one", groups, err)
	}
	tcpDomain, err := store.CreateDomain(ctx, st.DB(), store.Domain{GUID: uuid.NewString(), Name: "tcp.example.com",
		RouterGroupGUID: groups[0].GUID})
	if err != nil {
		t.Fatal(err)
	}
	f.tcpRoute = uuid.NewString()
	for _, r := range []struct {
		guid, protocol string
		port           int
	}{{f.tcpRoute, "tcp", 1024}, {uuid.NewString(), "udp", 1025}} {
		_, err := st.DB().ExecContext(ctx, `INSERT INTO routes (guid, port, protocol, domain_guid, router_group_guid, space_guid)
			VALUES ($1, $2, $3, $4, $5, $6)`, r.guid, r.port, r.protocol, tcpDomain.GUID, groups[0].GUID, f.space)
		if err != nil {
			t.Fatal(err)
		}
	}

	f.cert = validatedTLSCertificate(t, "shop.example.org")
	f.cert.GUID = uuid.NewString()
	sealed, err := f.sealer.Seal(f.cert.PrivateKeyPEM, []byte(f.cert.GUID))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	_, err = st.CreateCertificate(ctx, store.Certificate{GUID: f.cert.GUID, DomainName: f.cert.Domain,
		ChainPEM: string(f.cert.ChainPEM), CAPEM: string(f.cert.CAPEM), EncryptedPrivateKey: sealed,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"shop.example.org"},
		Issuer: "CN=test", Subject: "CN=test", SerialNumber: "1", SHA256Fingerprint: "00"},
		store.AuditEvent{Type: "audit.certificate.create", ActorGUID: "admin", ActorType: "user", ActorName: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// createOperatorGateway creates a Gateway as an operator would, with the
// given listeners, through an update by the field manager "operator".
func createOperatorGateway(t *testing.T, gateways gatewayclient.Interface, name, class string, listeners ...gatewayv1.Listener) {
	t.Helper()
	gw := &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ferry-system"},
		Spec:       gatewayv1.GatewaySpec{GatewayClassName: gatewayv1.ObjectName(class), Listeners: listeners},
	}
	if _, err := gateways.GatewayV1().Gateways("ferry-system").Create(t.Context(), gw,
		metav1.CreateOptions{FieldManager: "operator"}); err != nil {
		t.Fatalf("create Gateway %s: %v", name, err)
	}
}

func gatewayListenerNames(t *testing.T, gateways gatewayclient.Interface, name string) []string {
	t.Helper()
	gw, err := gateways.GatewayV1().Gateways("ferry-system").Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("read Gateway %s: %v", name, err)
	}
	names := listenerNames(gw.Spec.Listeners)
	slices.Sort(names)
	return names
}

// TestGatewayReconcilerOnAPIServer reconciles TLS Secrets, listeners, an
// organization's Gateway and a cert-manager Certificate from PostgreSQL on
// a real API server with the Gateway API CRDs, while an operator's
// listeners and a second installation's listener share the Gateway.
func TestGatewayReconcilerOnAPIServer(t *testing.T) {
	srv := startRoutingAPIServer(t)
	if err := srv.InstallGatewayCRDs(); err != nil {
		t.Fatalf("install Gateway API CRDs: %v", err)
	}
	gateways, err := gatewayclient.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	client := srv.Clientset()
	ctx := t.Context()
	f := newGatewayFixture(t)
	createNamespaces(t, client, "ferry-system")

	cfg := Config{
		Gateway: GatewayRef{Namespace: "ferry-system", Name: "ferry", HTTPSPort: 8443},
		Routing: RoutingConfig{ManageListeners: true, UDPGateway: GatewayRef{Namespace: "ferry-system", Name: "ferry-udp"}},
	}
	rec := NewGatewayReconciler(GatewayReconcilerOptions{
		Client: client, Gateways: gateways, Dynamic: srv.DynamicClient(), Config: cfg,
		Certificates: StoreCertificates{Store: f.st, Sealer: f.sealer},
		Desired:      StoreDesiredGateways{Store: f.st},
	})
	reconcile := func(t *testing.T) {
		t.Helper()
		if err := rec.Reconcile(ctx); err != nil {
			t.Fatalf("Reconcile = %v", err)
		}
	}
	secrets := client.CoreV1().Secrets("ferry-system")
	secretName := TLSSecretName(f.cert.GUID)

	t.Run("secrets before the gateway exists", func(t *testing.T) {
		err := rec.Reconcile(ctx)
		if !errors.Is(err, ErrGatewayNotFound) {
			t.Errorf("Reconcile = %v, want ErrGatewayNotFound", err)
		}
		secret, err := secrets.Get(ctx, secretName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("TLS Secret: %v", err)
		}
		if !bytes.Equal(secret.Data[corev1.TLSPrivateKeyKey], f.cert.PrivateKeyPEM) {
			t.Error("TLS Secret key differs from the uploaded key")
		}
	})

	operatorTLS := &gatewayv1.ListenerTLSConfig{Mode: ptr.To(gatewayv1.TLSModeTerminate),
		CertificateRefs: []gatewayv1.SecretObjectReference{{Name: "wildcard"}}}
	createOperatorGateway(t, gateways, "ferry", "traefik",
		gatewayv1.Listener{Name: "http", Port: 8080, Protocol: gatewayv1.HTTPProtocolType},
		gatewayv1.Listener{Name: "https", Port: 8443, Protocol: gatewayv1.HTTPSProtocolType,
			Hostname: ptr.To[gatewayv1.Hostname]("*.apps.ferry.test"), TLS: operatorTLS})
	createOperatorGateway(t, gateways, "ferry-udp", "ferry-udp",
		gatewayv1.Listener{Name: "dns", Port: 53, Protocol: gatewayv1.UDPProtocolType})

	// A second installation applies its own TCP listener with its own
	// field manager.
	other, err := MakeManagedListeners(nil, []RouteSpec{portRoute(RouteProtocolTCP, 1034)}, cfg.Gateway, "other")
	if err != nil {
		t.Fatal(err)
	}
	otherPatch, err := MakeListenerApply(cfg.Gateway, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gateways.GatewayV1().Gateways("ferry-system").Patch(ctx, "ferry", types.ApplyPatchType, otherPatch,
		metav1.PatchOptions{FieldManager: ListenerFieldManager("other")}); err != nil {
		t.Fatalf("apply the other installation's listener: %v", err)
	}

	orgGateway := OrgGatewayName(f.org)
	t.Run("listeners and org gateway without cert-manager", func(t *testing.T) {
		reconcile(t)
		want := []string{"http", "https", "https-shop.example.org", "https-shop.example.org-apex", "tcp-1024", "tcp-1034"}
		if diff := cmp.Diff(want, gatewayListenerNames(t, gateways, "ferry")); diff != "" {
			t.Errorf("main Gateway listeners (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"dns", "udp-1025"}, gatewayListenerNames(t, gateways, "ferry-udp")); diff != "" {
			t.Errorf("UDP Gateway listeners (-want +got):\n%s", diff)
		}
		wantOrg := []string{"http", "https", "https-shop.example.org", "https-shop.example.org-apex"}
		if diff := cmp.Diff(wantOrg, gatewayListenerNames(t, gateways, orgGateway)); diff != "" {
			t.Errorf("organization Gateway listeners (-want +got):\n%s", diff)
		}
		gw, err := gateways.GatewayV1().Gateways("ferry-system").Get(ctx, orgGateway, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if gw.Spec.GatewayClassName != "traefik" || gw.Labels[LabelOrgGUID] != f.org {
			t.Errorf("organization Gateway class %s, org label %q; want traefik and %s", gw.Spec.GatewayClassName,
				gw.Labels[LabelOrgGUID], f.org)
		}
	})

	t.Run("second sync changes nothing", func(t *testing.T) {
		before, err := gateways.GatewayV1().Gateways("ferry-system").Get(ctx, orgGateway, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		main, err := gateways.GatewayV1().Gateways("ferry-system").Get(ctx, "ferry", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		reconcile(t)
		after, err := gateways.GatewayV1().Gateways("ferry-system").Get(ctx, orgGateway, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mainAfter, err := gateways.GatewayV1().Gateways("ferry-system").Get(ctx, "ferry", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if after.ResourceVersion != before.ResourceVersion {
			t.Error("organization Gateway rewritten without a change")
		}
		if mainAfter.ResourceVersion != main.ResourceVersion {
			t.Error("main Gateway rewritten without a change")
		}
	})

	t.Run("tampered secret repaired", func(t *testing.T) {
		secret, err := secrets.Get(ctx, secretName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		secret.Data[corev1.TLSCertKey] = []byte("tampered")
		if _, err := secrets.Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		reconcile(t)
		repaired, err := secrets.Get(ctx, secretName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(repaired.Data[corev1.TLSCertKey], f.cert.ChainPEM) {
			t.Error("TLS Secret chain not repaired")
		}
	})

	t.Run("secret kept when the key does not open", func(t *testing.T) {
		wrongKey := make([]byte, tlscert.KeySize)
		wrong, err := tlscert.NewSealer(wrongKey)
		if err != nil {
			t.Fatal(err)
		}
		other := NewGatewayReconciler(GatewayReconcilerOptions{
			Client: client, Gateways: gateways, Dynamic: srv.DynamicClient(), Config: cfg,
			Certificates: StoreCertificates{Store: f.st, Sealer: wrong},
			Desired:      StoreDesiredGateways{Store: f.st},
		})
		if err := other.Reconcile(ctx); err != nil {
			t.Fatalf("Reconcile with another certificate key = %v", err)
		}
		if _, err := secrets.Get(ctx, secretName, metav1.GetOptions{}); err != nil {
			t.Errorf("TLS Secret after a sync with another key: %v", err)
		}
		names := gatewayListenerNames(t, gateways, "ferry")
		if !slices.Contains(names, "https-shop.example.org") {
			t.Errorf("main Gateway listeners = %v, want the kept certificate's", names)
		}
	})

	acmeSecret := ACMESecretName(f.acmeDomain)
	certificates := srv.DynamicClient().Resource(CertManagerCertificateGVR).Namespace("ferry-system")
	t.Run("cert-manager certificate", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "certificates.yaml"), []byte(certManagerCRD), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := srv.InstallCRDs(dir); err != nil {
			t.Fatalf("install the Certificate CRD: %v", err)
		}
		reconcile(t)

		cert, err := certificates.Get(ctx, acmeSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("cert-manager Certificate: %v", err)
		}
		wantSpec := MakeCertManagerCertificate(f.acmeDomain, "letsencrypt", "ferry-system", "").Object["spec"]
		if diff := cmp.Diff(wantSpec, cert.Object["spec"]); diff != "" {
			t.Errorf("Certificate spec (-want +got):\n%s", diff)
		}
		gw, err := gateways.GatewayV1().Gateways("ferry-system").Get(ctx, "ferry", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var refs []string
		for _, l := range gw.Spec.Listeners {
			if l.Name == gatewayv1.SectionName(HTTPSListenerName(f.acmeDomain)) {
				for _, ref := range l.TLS.CertificateRefs {
					refs = append(refs, string(ref.Name))
				}
			}
		}
		if diff := cmp.Diff([]string{acmeSecret}, refs); diff != "" {
			t.Errorf("cert-manager domain listener Secrets (-want +got):\n%s", diff)
		}
	})

	t.Run("removals", func(t *testing.T) {
		for _, stmt := range []string{
			`DELETE FROM routes WHERE guid = '` + f.tcpRoute + `'`,
			`UPDATE organizations SET dedicated_gateway = false WHERE guid = '` + f.org + `'`,
			`UPDATE domains SET annotations = '{}' WHERE name = '` + f.acmeDomain + `'`,
		} {
			if _, err := f.st.DB().ExecContext(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.st.DeleteCertificate(ctx, f.cert.GUID, store.AuditEvent{Type: "audit.certificate.delete",
			ActorGUID: "admin", ActorType: "user", ActorName: "admin"}); err != nil {
			t.Fatal(err)
		}
		reconcile(t)

		if diff := cmp.Diff([]string{"http", "https", "tcp-1034"}, gatewayListenerNames(t, gateways, "ferry")); diff != "" {
			t.Errorf("main Gateway listeners (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"dns", "udp-1025"}, gatewayListenerNames(t, gateways, "ferry-udp")); diff != "" {
			t.Errorf("UDP Gateway listeners (-want +got):\n%s", diff)
		}
		if _, err := secrets.Get(ctx, secretName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("TLS Secret of the deleted certificate: error %v, want not found", err)
		}
		if _, err := gateways.GatewayV1().Gateways("ferry-system").Get(ctx, orgGateway, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("organization Gateway after the flag was cleared: error %v, want not found", err)
		}
		if _, err := certificates.Get(ctx, acmeSecret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("cert-manager Certificate after the annotation was removed: error %v, want not found", err)
		}
	})
}

// TestGatewayReconcilerKeepsForeignSecret checks that a Secret with a TLS
// Secret's name but without Ferry's labels is reported and left alone.
func TestGatewayReconcilerKeepsForeignSecret(t *testing.T) {
	client := startAPIServer(t)
	ctx := context.Background()
	f := newGatewayFixture(t)
	createNamespaces(t, client, "ferry-system")
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: TLSSecretName(f.cert.GUID), Namespace: "ferry-system"},
		StringData: map[string]string{"note": "the operator's"}}
	if _, err := client.CoreV1().Secrets("ferry-system").Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	rec := NewGatewayReconciler(GatewayReconcilerOptions{
		Client: client, Config: Config{Gateway: GatewayRef{Namespace: "ferry-system", Name: "ferry"}},
		Certificates: StoreCertificates{Store: f.st, Sealer: f.sealer}, Desired: StoreDesiredGateways{Store: f.st},
	})
	_, err := rec.syncTLSSecrets(ctx, "ferry-system", mustCertificates(t, rec))
	var notOwned *NotOwnedError
	if !errors.As(err, &notOwned) {
		t.Errorf("sync = %v, want a NotOwnedError", err)
	}
	kept, err := client.CoreV1().Secrets("ferry-system").Get(ctx, foreign.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(kept.Data["note"]) != "the operator's" || kept.Type != corev1.SecretTypeOpaque {
		t.Errorf("foreign Secret changed: type %s, keys %d", kept.Type, len(kept.Data))
	}
}

func mustCertificates(t *testing.T, rec *GatewayReconciler) []TLSCertificateSpec {
	t.Helper()
	certs, err := rec.certificates.Certificates(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return certs
}
