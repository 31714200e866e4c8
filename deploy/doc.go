// Package deploy holds the files that run asi1d as a fleet: the nginx
// configuration (nginx/asi1d.conf), Compose files (compose.yaml: one server on one GPU; compose.fleet.yaml: replicas behind nginx) and
// Kubernetes manifests (k8s/). It has no Go code; its tests check that the
// files parse (the manifests strictly, against the Kubernetes API types) and
// agree with each other and with asi1d's flags.
package deploy
