// Package smoke contains the local environment's smoke test: an image built
// and pushed without Docker, run as a Deployment behind a Service and a
// Gateway API HTTPRoute, reached through the gateway, and deleted again.
// Its tests need the e2e build tag: go test -tags e2e ./e2e/smoke.
package smoke
