package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"
)

// loadTLS reads --tls-cert and --tls-key (PEM; the certificate file may hold
// the chain) into the server's TLS configuration: TLS 1.2 at least, Go's
// default cipher suites. It fails at start, before listening, on files that
// are missing, unreadable or do not match, and warns on a certificate that
// has expired or is not valid yet. The certificate is read once: rotating
// it takes a restart (or a proxy in front).
func loadTLS(certFile, keyFile string, log *slog.Logger) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("tls: parse %s: %w", certFile, err)
	}
	if now := time.Now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		log.Warn("tls: the certificate is not valid now", "not_before", leaf.NotBefore, "not_after", leaf.NotAfter)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}
