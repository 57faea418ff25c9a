// Package corednsrules contains the test that the CoreDNS rewrite rules the
// local environment writes (coredns_rewrites in hack/lib/configs.sh) equal
// the rules k8sbackend.RenderCoreDNSRewrites renders for the same internal
// domains and namespaces.
package corednsrules
