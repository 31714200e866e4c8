// Package fleettest runs the shipped nginx configuration (deploy/nginx) on
// loopback for tests: it renders the file with the replicas' test addresses
// and starts a real nginx on it.
package fleettest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asi1d/asi1d/internal/testutil"
)

// ConfPath is the shipped nginx file, relative to the repository root.
const ConfPath = "deploy/nginx/asi1d.conf"

// Nginx returns the nginx binary. Without one the test is skipped, except in
// CI, where it fails (testutil.Need): .ci/run installs nginx-light.
func Nginx(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("nginx")
	if err == nil {
		return p
	}
	for _, c := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	testutil.Need(t, "nginx", fmt.Errorf("nginx not found: %w (apt-get install nginx-light; .ci/run installs it)", err))
	return ""
}

// RepoFile returns the path of a repository file from a test's working
// directory (a package folder inside the repository).
func RepoFile(t testing.TB, rel string) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, rel)
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", wd)
		}
	}
}

var (
	serverRe = regexp.MustCompile(`(?m)^(\s*server\s+)replica-(\d+):8080(\s[^;]*)?;`)
	listenRe = regexp.MustCompile(`(?m)^(\s*listen\s+)8080;`)
	hashLine = "hash $http_x_session_id consistent;"
)

// Render returns the shipped configuration with only its addresses changed:
// replica-N:8080 becomes replicas[N-1], and the listen port becomes listen.
// With roundRobin, the session upstream's hash line is dropped (nginx's
// default round robin), for comparison.
func Render(src, listen string, replicas []string, roundRobin bool) (string, error) {
	var bad error
	seen := map[string]int{}
	out := serverRe.ReplaceAllStringFunc(src, func(m string) string {
		g := serverRe.FindStringSubmatch(m)
		var n int
		fmt.Sscan(g[2], &n)
		if n < 1 || n > len(replicas) {
			bad = fmt.Errorf("%s names replica-%d; the test has %d replicas", ConfPath, n, len(replicas))
			return m
		}
		seen[g[2]]++
		return g[1] + replicas[n-1] + g[3] + ";"
	})
	if bad != nil {
		return "", bad
	}
	if len(seen) != len(replicas) {
		return "", fmt.Errorf("%s lists %d replicas, the test has %d", ConfPath, len(seen), len(replicas))
	}
	if !listenRe.MatchString(out) {
		return "", fmt.Errorf("%s: no `listen 8080;` line", ConfPath)
	}
	out = listenRe.ReplaceAllString(out, "${1}"+listen+";")
	if roundRobin {
		if !strings.Contains(out, hashLine) {
			return "", fmt.Errorf("%s: no %q line", ConfPath, hashLine)
		}
		out = strings.Replace(out, hashLine, "# round robin for comparison", 1)
	}
	return out, nil
}

// wrap puts the http-context file into a main configuration whose pid, logs
// and temporary files are inside dir.
func wrap(nginx, http, dir string) string {
	var b strings.Builder
	if os.Geteuid() == 0 {
		b.WriteString("user root;\n") // workers must write the temp dirs below
	}
	fmt.Fprintf(&b, "worker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log warn;\n", dir, dir)
	b.WriteString("events { worker_connections 1024; }\nhttp {\n")
	b.WriteString("log_format fleet '$msec $status sid=$http_x_session_id up=$upstream_addr upstatus=$upstream_status $request_time';\n")
	fmt.Fprintf(&b, "access_log %s/access.log fleet;\nclient_body_temp_path %s/body;\nproxy_temp_path %s/proxy;\n", dir, dir, dir)
	v, _ := exec.Command(nginx, "-V").CombinedOutput()
	for _, m := range []string{"fastcgi", "uwsgi", "scgi"} {
		if !strings.Contains(string(v), "--without-http_"+m+"_module") {
			fmt.Fprintf(&b, "%s_temp_path %s/%s;\n", m, dir, m)
		}
	}
	b.WriteString(http)
	b.WriteString("\n}\n")
	return b.String()
}

// WriteConf renders the shipped file for the given addresses into dir and
// returns the main configuration's path.
func WriteConf(t testing.TB, nginx, dir, listen string, replicas []string, roundRobin bool) string {
	t.Helper()
	src, err := os.ReadFile(RepoFile(t, ConfPath))
	if err != nil {
		t.Fatal(err)
	}
	http, err := Render(string(src), listen, replicas, roundRobin)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(wrap(nginx, http, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// Check runs nginx -t on a configuration.
func Check(nginx, dir, conf string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, nginx, "-t", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf).CombinedOutput()
	if err != nil {
		return fmt.Errorf("nginx -t: %v\n%s", err, out)
	}
	return nil
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Balancer is a running nginx.
type Balancer struct {
	URL string // http://127.0.0.1:port
	Dir string // its configuration, pid, logs (access.log) and temp files
}

// Retried counts the requests of access.log that nginx passed to more than
// one replica (its $upstream_status lists several), and those of them that
// a replica had refused with 503.
func (b *Balancer) Retried() (retried, after503 int) {
	data, _ := os.ReadFile(filepath.Join(b.Dir, "access.log"))
	for _, line := range strings.Split(string(data), "\n") {
		_, st, ok := strings.Cut(line, " upstatus=")
		if !ok || !strings.Contains(st, ", ") {
			continue
		}
		retried++
		if strings.Contains(st, "503") {
			after503++
		}
	}
	return
}

// Start runs nginx in the foreground on the shipped file rendered for the
// replicas, listening on a free loopback port. It is stopped when the test
// ends.
func Start(t testing.TB, replicas []string, roundRobin bool) *Balancer {
	t.Helper()
	nginx := Nginx(t)
	dir := t.TempDir()
	listen := FreeAddr(t)
	conf := WriteConf(t, nginx, dir, listen, replicas, roundRobin)
	if err := Check(nginx, dir, conf); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf, "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			if len(log) > 8000 {
				log = log[len(log)-8000:]
			}
			t.Logf("nginx error.log (%s):\n%s", listen, log)
			acc, _ := os.ReadFile(filepath.Join(dir, "access.log"))
			if len(acc) > 8000 {
				acc = acc[len(acc)-8000:]
			}
			t.Logf("nginx access.log (%s), its end:\n%s", listen, acc)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM) // fast shutdown
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	url := "http://" + listen
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %v\n%s", waitErr, log)
		default:
		}
		resp, err := http.Get(url + "/nginx-health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return &Balancer{URL: url, Dir: dir}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not answer on %s: %v", listen, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
