# shellcheck shell=bash
# Certificates and kubeconfigs for the local cluster. One CA signs every
# certificate. Files are written once and reused, so clients keep trusting
# the cluster across `down` and `up`. Sourced after common.sh.

# new_cert NAME SUBJECT EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]
new_cert() {
  local name="$1" subject="$2" eku="$3" sans="${4:-}"
  local key="$CERT_DIR/$name.key" crt="$CERT_DIR/$name.crt" ext
  [[ -s "$crt" && -s "$key" ]] && return 0
  ext="$(mktemp)"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [[ -n "$sans" ]] && echo "subjectAltName=$sans"
  } >"$ext"
  openssl ecparam -name prime256v1 -genkey -noout -out "$key" 2>/dev/null
  openssl req -new -key "$key" -subj "$subject" -out "$CERT_DIR/$name.csr" 2>/dev/null
  openssl x509 -req -in "$CERT_DIR/$name.csr" -CA "$CERT_DIR/ca.crt" -CAkey "$CERT_DIR/ca.key" \
    -CAcreateserial -days 3650 -extfile "$ext" -out "$crt" 2>/dev/null
  rm -f "$ext" "$CERT_DIR/$name.csr"
  chmod 0600 "$key"
}

generate_certs() {
  if [[ ! -s "$CERT_DIR/ca.crt" ]]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$CERT_DIR/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$CERT_DIR/ca.key" -subj "/CN=ferry-local-ca" -days 3650 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$CERT_DIR/ca.crt" 2>/dev/null
    chmod 0600 "$CERT_DIR/ca.key"
  fi
  if [[ ! -s "$CERT_DIR/sa.key" ]]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$CERT_DIR/sa.key" 2>/dev/null
    openssl ec -in "$CERT_DIR/sa.key" -pubout -out "$CERT_DIR/sa.pub" 2>/dev/null
    chmod 0600 "$CERT_DIR/sa.key"
  fi

  local kubernetes_names="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN"
  new_cert apiserver "/CN=kube-apiserver" serverAuth \
    "IP:127.0.0.1,IP:$BRIDGE_IP,IP:$KUBERNETES_SERVICE_IP,DNS:localhost,$kubernetes_names"
  new_cert admin "/O=system:masters/CN=ferry-admin" clientAuth
  new_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  new_cert controller-manager "/CN=system:kube-controller-manager" clientAuth
  new_cert scheduler "/CN=system:kube-scheduler" clientAuth
  new_cert kube-proxy "/CN=system:kube-proxy" clientAuth
  new_cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
  new_cert kubelet-serving "/CN=$NODE_NAME" serverAuth "IP:$BRIDGE_IP,IP:127.0.0.1,DNS:$NODE_NAME,DNS:localhost"
  # Traefik, CoreDNS and hack/udpgateway run on the host and read every
  # namespace's routes, services and endpoints; the local cluster grants
  # them cluster-admin.
  new_cert traefik "/O=system:masters/CN=ferry-traefik" clientAuth
  new_cert coredns "/O=system:masters/CN=ferry-coredns" clientAuth
  new_cert udpgateway "/O=system:masters/CN=ferry-udpgateway" clientAuth
  new_cert ferry "/O=system:masters/CN=ferry" clientAuth
  new_cert gateway "/CN=*.$APPS_DOMAIN" serverAuth "DNS:*.$APPS_DOMAIN,DNS:$APPS_DOMAIN,DNS:localhost,IP:127.0.0.1"
}

# write_kubeconfig NAME CERT
write_kubeconfig() {
  local name="$1" cert="$2" file="$KUBECONFIG_DIR/$1.kubeconfig"
  local tmp="$file.tmp"
  cat >"$tmp" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: ferry-local
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $(base64 -w0 "$CERT_DIR/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 "$CERT_DIR/$cert.crt")
    client-key-data: $(base64 -w0 "$CERT_DIR/$cert.key")
contexts:
- name: ferry-local
  context:
    cluster: ferry-local
    user: $name
current-context: ferry-local
KUBECONFIG
  chmod 0600 "$tmp"
  mv "$tmp" "$file"
}

generate_kubeconfigs() {
  local name
  for name in admin controller-manager scheduler kube-proxy traefik coredns udpgateway ferry; do
    write_kubeconfig "$name" "$name"
  done
  write_kubeconfig kubelet kubelet-client
}
