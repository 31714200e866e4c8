package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/asi1d/asi1d/internal/testutil/fleettest"
)

// manifests decodes every document of deploy/k8s/*.yaml strictly into its
// Kubernetes API type: an unknown or misspelt field, a wrong type or a
// duplicate key fails the test.
func manifests(t *testing.T) (deps []*appsv1.Deployment, svcs []*corev1.Service, cms []*corev1.ConfigMap, pdbs []*policyv1.PodDisruptionBudget) {
	t.Helper()
	files, _ := filepath.Glob("k8s/*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests in deploy/k8s")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for i := 0; ; i++ {
			doc, err := rd.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s doc %d: %v", f, i, err)
			}
			strict := func(into any) {
				if err := yaml.UnmarshalStrict(doc, into); err != nil {
					t.Fatalf("%s doc %d (%s): %v", f, i, tm.Kind, err)
				}
			}
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 Deployment":
				d := &appsv1.Deployment{}
				strict(d)
				deps = append(deps, d)
			case "v1 Service":
				s := &corev1.Service{}
				strict(s)
				svcs = append(svcs, s)
			case "v1 ConfigMap":
				c := &corev1.ConfigMap{}
				strict(c)
				cms = append(cms, c)
			case "policy/v1 PodDisruptionBudget":
				p := &policyv1.PodDisruptionBudget{}
				strict(p)
				pdbs = append(pdbs, p)
			default:
				t.Fatalf("%s doc %d: unexpected %s %s", f, i, tm.APIVersion, tm.Kind)
			}
		}
	}
	return
}

func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

func TestKubernetesManifests(t *testing.T) {
	deps, svcs, cms, pdbs := manifests(t)
	var asi1d *appsv1.Deployment
	for _, d := range deps {
		if d.Name == "asi1d" {
			asi1d = d
		}
		if !labelsMatch(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("Deployment %s: selector %v does not match its pods' labels %v", d.Name, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
		}
	}
	if asi1d == nil {
		t.Fatal("no Deployment asi1d")
	}
	pod := asi1d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("asi1d pods have %d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	if q, ok := c.Resources.Limits["nvidia.com/gpu"]; !ok || q.Value() != 1 {
		t.Errorf("asi1d container: nvidia.com/gpu limit %v, want 1", c.Resources.Limits)
	}
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path {
			t.Errorf("%s probe: %+v, want GET %s", name, p, path)
		}
	}
	probe("liveness", c.LivenessProbe, "/health")
	probe("readiness", c.ReadinessProbe, "/ready")
	probe("startup", c.StartupProbe, "/health")

	// The grace period covers preStop, the drain and the HTTP shutdown.
	drain, err := time.ParseDuration(flagValue(c.Args, "drain-timeout"))
	if err != nil {
		t.Fatalf("asi1d args %v: --drain-timeout=...: %v", c.Args, err)
	}
	var preStop time.Duration
	if h := c.Lifecycle; h != nil && h.PreStop != nil && h.PreStop.Sleep != nil {
		preStop = time.Duration(h.PreStop.Sleep.Seconds) * time.Second
	}
	if pod.TerminationGracePeriodSeconds == nil {
		t.Fatal("no terminationGracePeriodSeconds")
	}
	grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	if grace <= preStop+drain+5*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v is not longer than preStop %v + --drain-timeout %v + 5s shutdown", grace, preStop, drain)
	}
	replicaEnv := false
	for _, e := range c.Env {
		if e.Name == "ASI1D_REPLICA_ID" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name" {
			replicaEnv = true
		}
	}
	if !replicaEnv {
		t.Error("ASI1D_REPLICA_ID is not the pod name")
	}
	if flagValue(c.Args, "ready-queue") == "" {
		t.Error("no --ready-queue: /ready would not shed load")
	}

	// The headless Service selects the asi1d pods; the router resolves it.
	var headless *corev1.Service
	for _, s := range svcs {
		if s.Name == "asi1d" {
			headless = s
		}
	}
	if headless == nil || headless.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Fatalf("no headless Service asi1d: %+v", headless)
	}
	if !labelsMatch(headless.Spec.Selector, asi1d.Spec.Template.Labels) {
		t.Errorf("Service asi1d selects %v, pods have %v", headless.Spec.Selector, asi1d.Spec.Template.Labels)
	}
	if len(pdbs) != 1 || !labelsMatch(pdbs[0].Spec.Selector.MatchLabels, asi1d.Spec.Template.Labels) {
		t.Errorf("PodDisruptionBudget does not select the asi1d pods")
	}
	fqdn := headless.Name + "." + headless.Namespace + ".svc.cluster.local"

	var envoy string
	for _, cm := range cms {
		if v, ok := cm.Data["envoy.yaml"]; ok {
			envoy = v
		}
	}
	if envoy == "" {
		t.Fatal("no ConfigMap with envoy.yaml")
	}
	checkEnvoy(t, envoy, fqdn, int(headless.Spec.Ports[0].Port))
}

func labelsMatch(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkEnvoy parses the Envoy configuration as YAML and checks the keys this
// deployment depends on. It is not a strict check against Envoy's protos
// (that would need Envoy's generated Go types, a large dependency): a
// misspelt key elsewhere would pass here and fail when Envoy starts.
func checkEnvoy(t *testing.T, src, fqdn string, port int) {
	var cfg any
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatalf("envoy.yaml: %v", err)
	}
	get := func(v any, path ...any) any {
		for _, p := range path {
			switch k := p.(type) {
			case string:
				m, _ := v.(map[string]any)
				v = m[k]
			case int:
				l, _ := v.([]any)
				if k >= len(l) {
					return nil
				}
				v = l[k]
			}
		}
		return v
	}
	hcm := get(cfg, "static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config")
	if get(hcm, "@type") != "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager" {
		t.Fatalf("first filter is not the HTTP connection manager: %v", hcm)
	}
	routes, _ := get(hcm, "route_config", "virtual_hosts", 0, "routes").([]any)
	if len(routes) != 2 {
		t.Fatalf("want 2 routes (with and without x-session-id), got %d", len(routes))
	}
	if get(routes[0], "match", "headers", 0, "name") != "x-session-id" || get(routes[0], "match", "headers", 0, "present_match") != true {
		t.Errorf("first route does not match on x-session-id: %v", get(routes[0], "match"))
	}
	if get(routes[0], "route", "hash_policy", 0, "header", "header_name") != "x-session-id" {
		t.Errorf("first route does not hash on x-session-id: %v", get(routes[0], "route"))
	}
	clusters := map[string]any{}
	for _, c := range get(cfg, "static_resources", "clusters").([]any) {
		clusters[get(c, "name").(string)] = c
	}
	wantLB := map[string]string{}
	for _, r := range routes {
		rt := get(r, "route")
		if get(rt, "timeout") != "0s" {
			t.Errorf("route %v: timeout %v, want 0s (streams)", get(r, "match"), get(rt, "timeout"))
		}
		rp := get(rt, "retry_policy")
		if !strings.Contains(get(rp, "retry_on").(string), "retriable-status-codes") || get(rp, "retriable_status_codes", 0) != float64(503) {
			t.Errorf("route %v does not retry a 503: %v", get(r, "match"), rp)
		}
		if strings.Contains(get(rp, "retry_on").(string), "5xx") {
			t.Errorf("route %v retries any 5xx: %v", get(r, "match"), rp)
		}
		name, _ := get(rt, "cluster").(string)
		if clusters[name] == nil {
			t.Errorf("route to unknown cluster %q", name)
		}
		if get(rt, "hash_policy") != nil {
			wantLB[name] = "RING_HASH"
		} else {
			wantLB[name] = "LEAST_REQUEST"
		}
	}
	for name, lb := range wantLB {
		c := clusters[name]
		if get(c, "lb_policy") != lb || get(c, "type") != "STRICT_DNS" {
			t.Errorf("cluster %s: lb_policy %v type %v, want %s STRICT_DNS", name, get(c, "lb_policy"), get(c, "type"), lb)
		}
		if get(c, "health_checks", 0, "http_health_check", "path") != "/ready" {
			t.Errorf("cluster %s does not health-check /ready", name)
		}
		sa := get(c, "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint", "address", "socket_address")
		if get(sa, "address") != fqdn || get(sa, "port_value") != float64(port) {
			t.Errorf("cluster %s resolves %v:%v, want the headless Service %s:%d", name, get(sa, "address"), get(sa, "port_value"), fqdn, port)
		}
	}
}

// The Compose file parses, runs three replicas and the balancer, and agrees
// with the nginx file and asi1d's drain.
func TestCompose(t *testing.T) {
	b, err := os.ReadFile("compose.fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type service struct {
		Image           string            `json:"image"`
		Environment     map[string]string `json:"environment"`
		StopGracePeriod string            `json:"stop_grace_period"`
		Healthcheck     struct {
			Test []string `json:"test"`
		} `json:"healthcheck"`
		Volumes   []string `json:"volumes"`
		Ports     []string `json:"ports"`
		DependsOn []string `json:"depends_on"`
		Deploy    struct {
			Resources struct {
				Reservations struct {
					Devices []struct {
						Capabilities []string `json:"capabilities"`
					} `json:"devices"`
				} `json:"reservations"`
			} `json:"resources"`
		} `json:"deploy"`
	}
	var doc struct {
		Services map[string]service `json:"services"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("compose.fleet.yaml: %v", err)
	}
	conf, err := os.ReadFile("nginx/asi1d.conf")
	if err != nil {
		t.Fatal(err)
	}
	var replicas []string
	for name, s := range doc.Services {
		if name == "balancer" {
			continue
		}
		replicas = append(replicas, name)
		if s.Environment["ASI1D_REPLICA_ID"] != name {
			t.Errorf("%s: ASI1D_REPLICA_ID %q", name, s.Environment["ASI1D_REPLICA_ID"])
		}
		drain, err1 := time.ParseDuration(s.Environment["ASI1D_DRAIN_TIMEOUT"])
		grace, err2 := time.ParseDuration(s.StopGracePeriod)
		if err1 != nil || err2 != nil || grace <= drain+5*time.Second {
			t.Errorf("%s: stop_grace_period %q must exceed ASI1D_DRAIN_TIMEOUT %q + 5s", name, s.StopGracePeriod, s.Environment["ASI1D_DRAIN_TIMEOUT"])
		}
		if !slices.Contains(s.Healthcheck.Test, "http://127.0.0.1:8080/ready") {
			t.Errorf("%s: healthcheck %v does not probe /ready", name, s.Healthcheck.Test)
		}
		// Every replica saves and restores sessions in one shared volume.
		dir, shared := s.Environment["ASI1D_SESSION_DIR"], false
		for _, v := range s.Volumes {
			src, dst, _ := strings.Cut(v, ":")
			shared = shared || (src == "sessions" && dst == dir)
		}
		if dir == "" || !shared {
			t.Errorf("%s: ASI1D_SESSION_DIR %q is not the shared sessions volume (%v)", name, dir, s.Volumes)
		}
		if d := s.Deploy.Resources.Reservations.Devices; len(d) != 1 || !slices.Contains(d[0].Capabilities, "gpu") {
			t.Errorf("%s: no GPU reservation", name)
		}
		// Both upstream blocks list it.
		if n := len(regexp.MustCompile(`(?m)^\s*server\s+`+regexp.QuoteMeta(name)+`:8080[\s;]`).FindAll(conf, -1)); n != 2 {
			t.Errorf("nginx/asi1d.conf lists %s:8080 %d times, want 2 (both upstreams)", name, n)
		}
	}
	slices.Sort(replicas)
	if !slices.Equal(replicas, []string{"replica-1", "replica-2", "replica-3"}) {
		t.Errorf("replica services %v", replicas)
	}
	if n := len(regexp.MustCompile(`(?m)^\s*server\s+replica-`).FindAll(conf, -1)); n != 2*len(replicas) {
		t.Errorf("nginx/asi1d.conf has %d replica server lines, compose %d replicas", n, len(replicas))
	}
	lb, ok := doc.Services["balancer"]
	if !ok {
		t.Fatal("no balancer service")
	}
	mounted := false
	for _, v := range lb.Volumes {
		src, dst, _ := strings.Cut(v, ":")
		if src == "./nginx/asi1d.conf" && strings.HasPrefix(dst, "/etc/nginx/conf.d/") {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("balancer does not mount ./nginx/asi1d.conf into conf.d: %v", lb.Volumes)
	}
	deps := slices.Clone(lb.DependsOn)
	slices.Sort(deps)
	if !slices.Equal(deps, replicas) {
		t.Errorf("balancer depends_on %v, want %v", lb.DependsOn, replicas)
	}
}

// Render refuses a file that does not match the test's replicas.
func TestRenderMismatch(t *testing.T) {
	src, err := os.ReadFile("nginx/asi1d.conf")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fleettest.Render(string(src), "127.0.0.1:9", []string{"a:1", "b:2"}, false); err == nil {
		t.Error("3 replicas rendered for 2 addresses")
	}
	out, err := fleettest.Render(string(src), "127.0.0.1:9", []string{"a:1", "b:2", "c:3"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "replica-") || strings.Contains(out, "hash $http_x_session_id") || !strings.Contains(out, "listen 127.0.0.1:9;") {
		t.Errorf("rendered:\n%s", out)
	}
}

// The one-GPU Compose file runs one server on one GPU, refuses to start
// without an API key, serves the models folder, and drains like the fleet.
func TestComposeSingle(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type service struct {
		Environment     map[string]string `json:"environment"`
		StopGracePeriod string            `json:"stop_grace_period"`
		Volumes         []string          `json:"volumes"`
		Ports           []string          `json:"ports"`
		Deploy          struct {
			Resources struct {
				Reservations struct {
					Devices []struct {
						Count        int      `json:"count"`
						DeviceIDs    []string `json:"device_ids"`
						Capabilities []string `json:"capabilities"`
					} `json:"devices"`
				} `json:"reservations"`
			} `json:"resources"`
		} `json:"deploy"`
	}
	var doc struct {
		Services map[string]service `json:"services"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	if len(doc.Services) != 1 {
		t.Fatalf("compose.yaml has %d services, want one server", len(doc.Services))
	}
	for name, s := range doc.Services {
		if d := s.Deploy.Resources.Reservations.Devices; len(d) != 1 || d[0].Count != 1 || len(d[0].DeviceIDs) != 0 || !slices.Contains(d[0].Capabilities, "gpu") {
			t.Errorf("%s: want a reservation of one GPU by count, got %+v", name, d)
		}
		if k := s.Environment["ASI1D_API_KEY"]; !strings.HasPrefix(k, "${ASI1D_API_KEY:?") {
			t.Errorf("%s: ASI1D_API_KEY %q: want it required from the environment (${ASI1D_API_KEY:?...})", name, k)
		}
		dir := s.Environment["ASI1D_MODELS_DIR"]
		mounted := false
		for _, v := range s.Volumes {
			// SOURCE:TARGET[:MODE], where SOURCE may be ${VAR:-default}.
			v = strings.TrimSuffix(strings.TrimSuffix(v, ":ro"), ":rw")
			mounted = mounted || v[strings.LastIndex(v, ":")+1:] == dir
		}
		if dir == "" || !mounted {
			t.Errorf("%s: ASI1D_MODELS_DIR %q is not a mounted folder (%v)", name, dir, s.Volumes)
		}
		drain, err1 := time.ParseDuration(s.Environment["ASI1D_DRAIN_TIMEOUT"])
		grace, err2 := time.ParseDuration(s.StopGracePeriod)
		if err1 != nil || err2 != nil || grace <= drain+5*time.Second {
			t.Errorf("%s: stop_grace_period %q must exceed ASI1D_DRAIN_TIMEOUT %q + 5s", name, s.StopGracePeriod, s.Environment["ASI1D_DRAIN_TIMEOUT"])
		}
	}
}
