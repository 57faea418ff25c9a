package cfapi

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/tlscert"
)

// testCA issues certificates for the certificate API tests. Uploads name
// its root in ca_certificate, because it is in no system pool.
type testCA struct {
	t    *testing.T
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key := newECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Ferry API Test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{t: t, cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

var testSerial int64 = 100

// issue returns a PEM leaf for dnsNames and key, valid from notBefore to
// notAfter.
func (ca *testCA) issue(key crypto.Signer, notBefore, notAfter time.Time, dnsNames ...string) string {
	ca.t.Helper()
	testSerial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(testSerial),
		Subject:      pkix.Name{CommonName: "leaf"},
		DNSNames:     dnsNames,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// leaf returns a PEM leaf valid for a year.
func (ca *testCA) leaf(key crypto.Signer, dnsNames ...string) string {
	return ca.issue(key, time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0), dnsNames...)
}

func keyPEM(t testing.TB, key crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// newCertificateEnv is a test API with a certificate key.
func newCertificateEnv(t *testing.T) (*testEnv, *tlscert.Sealer) {
	t.Helper()
	env := newTestEnv(t)
	key := make([]byte, tlscert.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	sealer, err := tlscert.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	env.api.sealer = sealer
	return env, sealer
}

type certificateResource struct {
	GUID              string   `json:"guid"`
	Domain            string   `json:"domain"`
	Certificate       string   `json:"certificate"`
	CACertificate     *string  `json:"ca_certificate"`
	NotBefore         string   `json:"not_before"`
	NotAfter          string   `json:"not_after"`
	DNSNames          []string `json:"dns_names"`
	Serves            []string `json:"serves"`
	Subject           string   `json:"subject"`
	Issuer            string   `json:"issuer"`
	SerialNumber      string   `json:"serial_number"`
	SHA256Fingerprint string   `json:"sha256_fingerprint"`
	Metadata          struct {
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Links struct {
		Self struct {
			Href string `json:"href"`
		} `json:"self"`
	} `json:"links"`
}

type certificateList struct {
	Pagination struct {
		TotalResults int `json:"total_results"`
	} `json:"pagination"`
	Resources []certificateResource `json:"resources"`
}

// uploadCertificate creates a certificate for domain as admin and returns it.
func (e *testEnv) uploadCertificate(ca *testCA, domain string, key crypto.Signer) certificateResource {
	e.t.Helper()
	var c certificateResource
	e.do(http.MethodPost, "/v3/certificates", e.adminToken(), map[string]any{
		"domain":         domain,
		"certificate":    ca.leaf(key, "*."+domain),
		"private_key":    keyPEM(e.t, key),
		"ca_certificate": ca.pem,
	}).expect(http.StatusCreated).decode(&c)
	return c
}

func TestCertificateLifecycle(t *testing.T) {
	env, sealer := newCertificateEnv(t)
	ca := newTestCA(t)
	key := newECKey(t)
	admin := env.adminToken()

	// Upload.
	chain := ca.leaf(key, "apps.example.com", "*.apps.example.com")
	resp := env.do(http.MethodPost, "/v3/certificates", admin, map[string]any{
		"domain":         "Apps.Example.com",
		"certificate":    chain,
		"private_key":    keyPEM(t, key),
		"ca_certificate": ca.pem,
		"metadata":       map[string]any{"labels": map[string]any{"team": "edge"}},
	}).expect(http.StatusCreated)
	if bytes.Contains(resp.Body, []byte("PRIVATE KEY")) || bytes.Contains(resp.Body, []byte("private_key")) {
		t.Fatalf("create response contains the private key: %s", resp.Body)
	}
	var c certificateResource
	resp.decode(&c)
	if c.Domain != "apps.example.com" || c.Certificate != chain || c.CACertificate == nil || *c.CACertificate != ca.pem {
		t.Errorf("created = domain %q, chain equal %v, CA %v; want the upload", c.Domain, c.Certificate == chain, c.CACertificate)
	}
	if strings.Join(c.Serves, ",") != "apps.example.com,*.apps.example.com" || len(c.DNSNames) != 2 {
		t.Errorf("serves = %v, dns_names = %v", c.Serves, c.DNSNames)
	}
	if c.Issuer != "CN=Ferry API Test CA" || c.SHA256Fingerprint == "" || c.SerialNumber == "" || c.NotAfter == "" {
		t.Errorf("leaf facts missing: %+v", c)
	}
	if c.Metadata.Labels["team"] != "edge" || !strings.HasSuffix(c.Links.Self.Href, "/v3/certificates/"+c.GUID) {
		t.Errorf("labels = %v, self = %q", c.Metadata.Labels, c.Links.Self.Href)
	}

	// The stored key is sealed for this record and opens to the upload's key.
	stored, err := env.store.CertificateByDomain(context.Background(), "apps.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored.EncryptedPrivateKey, []byte("PRIVATE KEY")) {
		t.Error("the database holds the private key in plain text")
	}
	opened, err := sealer.Open(stored.EncryptedPrivateKey, []byte(c.GUID))
	if err != nil {
		t.Fatalf("open the stored key: %v", err)
	}
	if string(opened) != keyPEM(t, key) {
		t.Error("the stored key is not the uploaded one")
	}

	// Read.
	var got certificateResource
	env.do(http.MethodGet, "/v3/certificates/"+c.GUID, admin, nil).expect(http.StatusOK).decode(&got)
	if got.SHA256Fingerprint != c.SHA256Fingerprint {
		t.Errorf("GET fingerprint = %q, want %q", got.SHA256Fingerprint, c.SHA256Fingerprint)
	}
	var list certificateList
	env.do(http.MethodGet, "/v3/certificates?domains=APPS.example.com&order_by=-not_after", admin, nil).expect(http.StatusOK).decode(&list)
	if list.Pagination.TotalResults != 1 || len(list.Resources) != 1 || list.Resources[0].GUID != c.GUID {
		t.Errorf("list by domain = %+v", list)
	}
	env.do(http.MethodGet, "/v3/certificates?domains=other.example.com", admin, nil).expect(http.StatusOK).decode(&list)
	if list.Pagination.TotalResults != 0 {
		t.Errorf("list by another domain found %d", list.Pagination.TotalResults)
	}

	// Rotate to a new key and certificate.
	newKey := newECKey(t)
	var rotated certificateResource
	env.do(http.MethodPatch, "/v3/certificates/"+c.GUID, admin, map[string]any{
		"certificate": ca.leaf(newKey, "*.apps.example.com"),
		"private_key": keyPEM(t, newKey),
	}).expect(http.StatusOK).decode(&rotated)
	if rotated.SHA256Fingerprint == c.SHA256Fingerprint || strings.Join(rotated.Serves, ",") != "*.apps.example.com" {
		t.Errorf("rotated = fingerprint %q, serves %v; want a new certificate for *.apps.example.com", rotated.SHA256Fingerprint, rotated.Serves)
	}
	if rotated.CACertificate == nil || *rotated.CACertificate != ca.pem {
		t.Errorf("rotation without ca_certificate changed the CA to %v", rotated.CACertificate)
	}

	// Renew: a new certificate for the stored key.
	renewed := ca.issue(newKey, time.Now().Add(-time.Hour), time.Now().AddDate(2, 0, 0), "*.apps.example.com")
	var afterRenewal certificateResource
	env.do(http.MethodPatch, "/v3/certificates/"+c.GUID, admin, map[string]any{"certificate": renewed}).
		expect(http.StatusOK).decode(&afterRenewal)
	if afterRenewal.Certificate != renewed || afterRenewal.NotAfter <= rotated.NotAfter {
		t.Errorf("renewal = not_after %s (was %s); want the renewed certificate", afterRenewal.NotAfter, rotated.NotAfter)
	}

	// Metadata alone.
	var labelled certificateResource
	env.do(http.MethodPatch, "/v3/certificates/"+c.GUID, admin, map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"team": nil, "tier": "gold"}},
	}).expect(http.StatusOK).decode(&labelled)
	if len(labelled.Metadata.Labels) != 1 || labelled.Metadata.Labels["tier"] != "gold" || labelled.Certificate != renewed {
		t.Errorf("after metadata update = labels %v, certificate kept %v", labelled.Metadata.Labels, labelled.Certificate == renewed)
	}

	// Delete.
	env.do(http.MethodDelete, "/v3/certificates/"+c.GUID, admin, nil).expect(http.StatusNoContent)
	env.do(http.MethodGet, "/v3/certificates/"+c.GUID, admin, nil).expect(http.StatusNotFound)
	env.do(http.MethodDelete, "/v3/certificates/"+c.GUID, admin, nil).expect(http.StatusNotFound)

	var events int
	err = env.store.DB().QueryRow(`SELECT count(*) FROM audit_events WHERE target_guid = $1 AND type IN
		('audit.certificate.create', 'audit.certificate.update', 'audit.certificate.delete')`, c.GUID).Scan(&events)
	if err != nil || events != 5 {
		t.Errorf("audit events = %d, %v; want create, three updates and delete", events, err)
	}
	var leaked int
	err = env.store.DB().QueryRow(`SELECT count(*) FROM audit_events WHERE data::text LIKE '%PRIVATE KEY%' OR data::text LIKE '%BEGIN%'`).Scan(&leaked)
	if err != nil || leaked != 0 {
		t.Errorf("audit events with PEM text = %d, %v; want 0", leaked, err)
	}
	if strings.Contains(env.logs.String(), "PRIVATE KEY") {
		t.Error("the logs contain a private key")
	}
}

func TestCertificateUploadRejects(t *testing.T) {
	env, _ := newCertificateEnv(t)
	ca := newTestCA(t)
	key, otherKey := newECKey(t), newECKey(t)
	goodChain, goodKey := ca.leaf(key, "*.apps.example.com"), keyPEM(t, key)

	for _, tc := range []struct {
		name string
		body any
		// wantDetail is a part of the 422's detail.
		wantDetail string
	}{
		{"missing fields", map[string]any{"domain": ""}, "Domain can't be blank, Certificate can't be blank, Private key can't be blank"},
		{"unknown field", map[string]any{"domain": "apps.example.com", "certificate": goodChain, "private_key": goodKey, "key": "x"},
			"Unknown field(s): 'key'"},
		{"invalid domain", map[string]any{"domain": "apps_example.com", "certificate": goodChain, "private_key": goodKey, "ca_certificate": ca.pem},
			"is not a valid domain name"},
		{"garbage certificate", map[string]any{"domain": "apps.example.com", "certificate": "garbage", "private_key": goodKey},
			"certificate is not a PEM certificate"},
		{"garbage key", map[string]any{"domain": "apps.example.com", "certificate": goodChain, "private_key": "garbage"},
			"private_key is not a PEM private key"},
		{"wrong key", map[string]any{"domain": "apps.example.com", "certificate": goodChain, "private_key": keyPEM(t, otherKey), "ca_certificate": ca.pem},
			"private_key does not match the certificate"},
		{"wrong domain", map[string]any{"domain": "shop.example.com", "certificate": goodChain, "private_key": goodKey, "ca_certificate": ca.pem},
			"certificate is not valid for domain shop.example.com"},
		{"expired", map[string]any{"domain": "apps.example.com", "private_key": goodKey, "ca_certificate": ca.pem,
			"certificate": ca.issue(key, time.Now().AddDate(-2, 0, 0), time.Now().AddDate(-1, 0, 0), "*.apps.example.com")},
			"certificate has expired"},
		{"not yet valid", map[string]any{"domain": "apps.example.com", "private_key": goodKey, "ca_certificate": ca.pem,
			"certificate": ca.issue(key, time.Now().AddDate(0, 0, 1), time.Now().AddDate(1, 0, 0), "*.apps.example.com")},
			"certificate is not yet valid"},
		{"untrusted without CA", map[string]any{"domain": "apps.example.com", "certificate": goodChain, "private_key": goodKey},
			"does not lead to a trusted root"},
		{"garbage CA", map[string]any{"domain": "apps.example.com", "certificate": goodChain, "private_key": goodKey, "ca_certificate": "junk"},
			"ca_certificate is not a PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := env.do(http.MethodPost, "/v3/certificates", env.adminToken(), tc.body).expect(http.StatusUnprocessableEntity)
			code, title, detail := resp.cfError()
			if code != 10008 || title != "CF-UnprocessableEntity" {
				t.Errorf("error = %d %s, want 10008 CF-UnprocessableEntity", code, title)
			}
			if !strings.Contains(detail, tc.wantDetail) {
				t.Errorf("detail = %q, want it to contain %q", detail, tc.wantDetail)
			}
		})
	}

	var list certificateList
	env.do(http.MethodGet, "/v3/certificates", env.adminToken(), nil).expect(http.StatusOK).decode(&list)
	if list.Pagination.TotalResults != 0 {
		t.Errorf("rejected uploads created %d certificates", list.Pagination.TotalResults)
	}
}

func TestCertificateOnePerDomainAPI(t *testing.T) {
	env, _ := newCertificateEnv(t)
	ca := newTestCA(t)
	first := env.uploadCertificate(ca, "apps.example.com", newECKey(t))

	key := newECKey(t)
	resp := env.do(http.MethodPost, "/v3/certificates", env.adminToken(), map[string]any{
		"domain": "apps.example.com", "certificate": ca.leaf(key, "*.apps.example.com"),
		"private_key": keyPEM(t, key), "ca_certificate": ca.pem,
	}).expect(http.StatusUnprocessableEntity)
	_, _, detail := resp.cfError()
	if !strings.Contains(detail, "already exists") || !strings.Contains(detail, "PATCH /v3/certificates/"+first.GUID) {
		t.Errorf("detail = %q, want it to name the existing certificate %s", detail, first.GUID)
	}
}

func TestCertificateUpdateRejects(t *testing.T) {
	env, _ := newCertificateEnv(t)
	ca := newTestCA(t)
	c := env.uploadCertificate(ca, "apps.example.com", newECKey(t))
	otherKey := newECKey(t)

	for _, tc := range []struct {
		name       string
		body       any
		wantDetail string
	}{
		{"domain change", map[string]any{"domain": "shop.example.com"}, "Domain cannot be changed"},
		{"certificate for another key", map[string]any{"certificate": ca.leaf(otherKey, "*.apps.example.com")},
			"private_key does not match the certificate"},
		{"certificate for another domain", map[string]any{"certificate": ca.leaf(otherKey, "*.shop.example.com"),
			"private_key": keyPEM(t, otherKey)}, "certificate is not valid for domain apps.example.com"},
		{"back to system roots", map[string]any{"ca_certificate": ""}, "does not lead to a trusted root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, detail := env.do(http.MethodPatch, "/v3/certificates/"+c.GUID, env.adminToken(), tc.body).
				expect(http.StatusUnprocessableEntity).cfError()
			if !strings.Contains(detail, tc.wantDetail) {
				t.Errorf("detail = %q, want it to contain %q", detail, tc.wantDetail)
			}
		})
	}

	var after certificateResource
	env.do(http.MethodGet, "/v3/certificates/"+c.GUID, env.adminToken(), nil).expect(http.StatusOK).decode(&after)
	if after.SHA256Fingerprint != c.SHA256Fingerprint || after.CACertificate == nil {
		t.Errorf("rejected updates changed the certificate")
	}
}

func TestCertificateStoredUnderOtherKey(t *testing.T) {
	env, _ := newCertificateEnv(t)
	ca := newTestCA(t)
	key := newECKey(t)
	c := env.uploadCertificate(ca, "apps.example.com", key)

	// Another installation key cannot open the stored key.
	otherKey := make([]byte, tlscert.KeySize)
	otherKey[0] = 1
	other, err := tlscert.NewSealer(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	env.api.sealer = other

	_, _, detail := env.do(http.MethodPatch, "/v3/certificates/"+c.GUID, env.adminToken(), map[string]any{
		"certificate": ca.leaf(key, "*.apps.example.com"),
	}).expect(http.StatusUnprocessableEntity).cfError()
	if !strings.Contains(detail, "send private_key with the certificate") {
		t.Errorf("detail = %q, want the advice to send private_key", detail)
	}
	// Sending the key as well works.
	env.do(http.MethodPatch, "/v3/certificates/"+c.GUID, env.adminToken(), map[string]any{
		"certificate": ca.leaf(key, "*.apps.example.com"), "private_key": keyPEM(t, key),
	}).expect(http.StatusOK)
}

func TestCertificateWithoutSealer(t *testing.T) {
	env := newTestEnv(t)
	ca := newTestCA(t)
	key := newECKey(t)
	env.do(http.MethodPost, "/v3/certificates", env.adminToken(), map[string]any{
		"domain": "apps.example.com", "certificate": ca.leaf(key, "*.apps.example.com"),
		"private_key": keyPEM(t, key), "ca_certificate": ca.pem,
	}).expect(http.StatusServiceUnavailable)
	env.do(http.MethodGet, "/v3/certificates", env.adminToken(), nil).expect(http.StatusOK)
}

func TestCertificatePermissions(t *testing.T) {
	env, _ := newCertificateEnv(t)
	ca := newTestCA(t)
	c := env.uploadCertificate(ca, "apps.example.com", newECKey(t))
	_, userToken := env.newUser("alice")
	_, auditorToken := env.newUser("auditor", auth.ScopeGlobalAuditor)
	key := newECKey(t)
	upload := map[string]any{"domain": "shop.example.com", "certificate": ca.leaf(key, "*.shop.example.com"),
		"private_key": keyPEM(t, key), "ca_certificate": ca.pem}
	path := "/v3/certificates/" + c.GUID

	for _, tc := range []struct {
		name   string
		token  string
		method string
		path   string
		body   any
		want   int
	}{
		{"user creates", userToken, http.MethodPost, "/v3/certificates", upload, http.StatusForbidden},
		{"user gets", userToken, http.MethodGet, path, nil, http.StatusNotFound},
		{"user updates", userToken, http.MethodPatch, path, map[string]any{}, http.StatusNotFound},
		{"user deletes", userToken, http.MethodDelete, path, nil, http.StatusNotFound},
		{"auditor gets", auditorToken, http.MethodGet, path, nil, http.StatusOK},
		{"auditor creates", auditorToken, http.MethodPost, "/v3/certificates", upload, http.StatusForbidden},
		{"auditor updates", auditorToken, http.MethodPatch, path, map[string]any{}, http.StatusForbidden},
		{"auditor deletes", auditorToken, http.MethodDelete, path, nil, http.StatusForbidden},
		{"no token", "", http.MethodGet, "/v3/certificates", nil, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env.do(tc.method, tc.path, tc.token, tc.body).expect(tc.want)
		})
	}

	var list certificateList
	env.do(http.MethodGet, "/v3/certificates", userToken, nil).expect(http.StatusOK).decode(&list)
	if list.Pagination.TotalResults != 0 {
		t.Errorf("a user without roles sees %d certificates", list.Pagination.TotalResults)
	}
	env.do(http.MethodGet, path, env.adminToken(), nil).expect(http.StatusOK)
}

func TestCertificateListQuery(t *testing.T) {
	env, _ := newCertificateEnv(t)
	_, _, detail := env.do(http.MethodGet, "/v3/certificates?names=x", env.adminToken(), nil).
		expect(http.StatusBadRequest).cfError()
	if !strings.Contains(detail, "'domains'") {
		t.Errorf("detail = %q, want the valid parameters listed", detail)
	}
	env.do(http.MethodGet, "/v3/certificates?order_by=name", env.adminToken(), nil).expect(http.StatusBadRequest)
}
