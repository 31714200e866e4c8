package server

import (
	"os"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// HeaderReplica names the replica that answered a request. Behind a load
// balancer it shows which replica served a session (to debug affinity); it is
// sent on every answer, errors and /health included.
const HeaderReplica = "x-asi1d-replica"

// DefaultReplicaID is the replica id when Options.ReplicaID is empty: the
// host name (a pod's or container's name), or "asi1d" when it is unknown.
func DefaultReplicaID() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "asi1d"
}

// Replica sets the x-asi1d-replica response header to id on every answer.
func Replica(id string) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header(HeaderReplica, id)
		c.Next()
	}
}

// replicaID is the id a replica shows: Options.ReplicaID, or the host name.
func replicaID(o Options) string {
	if o.ReplicaID != "" {
		return o.ReplicaID
	}
	return DefaultReplicaID()
}

// registerReplica adds what a replica behind a balancer shows about itself
// besides the x-asi1d-replica header (which newRouter sets on every answer):
// the asi1_replica_info and asi1_draining gauges (an autoscaler's other
// inputs, queue depth, running streams, KV use and prefix-cache hits, are
// the scheduler's families in metrics.go).
func (s *Server) registerReplica(reg prometheus.Registerer) {
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: "asi1_replica_info",
		Help: "Always 1; its replica label is the id sent in the x-asi1d-replica header.", ConstLabels: prometheus.Labels{"replica": replicaID(s.opts)}})
	info.Set(1)
	draining := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "asi1_draining",
		Help: "1 while the replica drains (refuses new work with 503 and finishes what it has), else 0."},
		func() float64 {
			if s.draining.Load() {
				return 1
			}
			return 0
		})
	reg.MustRegister(info, draining)
}
