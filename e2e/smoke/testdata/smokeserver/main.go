// Command smokeserver is the app of the smoke test, an HTTP server on :8080.
//
//	GET /                returns "ferry smoke " and the value of SMOKE_TOKEN,
//	                     so the test can tell its own pod's response from any other
//	GET /fetch?url=URL   fetches URL from inside the pod and relays the status
//	                     and body, so the test can check cluster DNS, Services
//	                     and the API server as a pod sees them
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"time"
)

// serviceAccountCA is where the kubelet mounts the cluster CA.
const serviceAccountCA = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"

func main() {
	body := "ferry smoke " + os.Getenv("SMOKE_TOKEN") + "\n"
	client := newClient()

	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, body)
	})
	http.HandleFunc("/fetch", func(w http.ResponseWriter, r *http.Request) {
		resp, err := client.Get(r.URL.Query().Get("url"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, io.LimitReader(resp.Body, 1<<20))
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}

// newClient trusts the cluster CA when the pod has one mounted.
func newClient() *http.Client {
	tr := &http.Transport{Proxy: nil}
	if pem, err := os.ReadFile(serviceAccountCA); err == nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}
