package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
)

// The default of --threads: the CPUs this process may actually use. That is
// the affinity mask (runtime.NumCPU reads it at start), capped by the CPU
// quota of the process's cgroup and of every cgroup above it (v2 cpu.max,
// v1 cpu.cfs_quota_us / cpu.cfs_period_us), rounded to the nearest whole
// CPU and at least 1.
//
// Go 1.25+ applies the same limits to GOMAXPROCS, but rounds the quota up
// and never below 2, so a container limited to 1 CPU gets GOMAXPROCS 2: two
// ggml workers that spin-wait on each other at every barrier while the
// quota lets one run. GOMAXPROCS can also be overridden by its environment
// variable. Hence this reading of its own.

// usableCPUs returns the default thread count and a few words on what set
// it, for the log.
func usableCPUs() (int, string) {
	return cpusFrom("/", runtime.NumCPU())
}

// cpusFrom computes usableCPUs with the files under root (a test's fake
// /proc and /sys) and the affinity count cpus.
func cpusFrom(root string, cpus int) (int, string) {
	cpus = max(cpus, 1)
	limit, where, ok := cgroupCPULimit(root)
	if !ok {
		return cpus, fmt.Sprintf("affinity mask (%d CPUs)", cpus)
	}
	n := max(int(math.Floor(limit+0.5)), 1)
	if n >= cpus {
		return cpus, fmt.Sprintf("affinity mask (%d CPUs; cgroup quota %.2f CPUs at %s)", cpus, limit, where)
	}
	return n, fmt.Sprintf("cgroup CPU quota %.2f CPUs at %s (affinity mask %d CPUs)", limit, where, cpus)
}

// cgroupCPULimit is the smallest CPU quota, in CPUs, over the process's
// cgroups (v1 cpu controller and v2) and their ancestors; ok false when none
// is set or the files cannot be read.
func cgroupCPULimit(root string) (limit float64, where string, ok bool) {
	cg, err := os.ReadFile(path.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0, "", false
	}
	mi, err := os.ReadFile(path.Join(root, "proc/self/mountinfo"))
	if err != nil {
		return 0, "", false
	}
	mounts := parseMountinfo(mi)
	limit = math.Inf(1)
	consider := func(l float64, dir string) {
		if l < limit {
			limit, where, ok = l, dir, true
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(cg))
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 {
			continue
		}
		v2 := f[0] == "0" && f[1] == ""
		if !v2 && !hasWord(f[1], "cpu") {
			continue
		}
		for _, m := range mounts {
			if m.v2 != v2 || (!v2 && !hasWord(m.opts, "cpu")) {
				continue
			}
			rel, found := strings.CutPrefix(f[2], m.root)
			if !found {
				continue
			}
			// The cgroup and each ancestor up to the mount's root.
			for dir := path.Join(root, m.point, rel); ; dir = path.Dir(dir) {
				if l, set := readQuota(dir, v2); set {
					consider(l, strings.TrimPrefix(dir, strings.TrimSuffix(root, "/")))
				}
				if dir == path.Join(root, m.point) || dir == "/" || dir == "." {
					break
				}
			}
		}
	}
	return limit, where, ok
}

// hasWord reports whether the comma-separated list s holds w.
func hasWord(s, w string) bool {
	for _, x := range strings.Split(s, ",") {
		if x == w {
			return true
		}
	}
	return false
}

type cgroupMount struct {
	root, point, opts string
	v2                bool
}

// parseMountinfo returns the cgroup mounts of /proc/self/mountinfo:
// "id parent major:minor root mountpoint opts [optional...] - fstype source superopts".
func parseMountinfo(b []byte) []cgroupMount {
	var out []cgroupMount
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		pre, post, found := strings.Cut(sc.Text(), " - ")
		if !found {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		switch g[0] {
		case "cgroup2":
			out = append(out, cgroupMount{root: f[3], point: f[4], v2: true})
		case "cgroup":
			out = append(out, cgroupMount{root: f[3], point: f[4], opts: g[2]})
		}
	}
	return out
}

// readQuota reads one cgroup directory's CPU quota in CPUs; set false when
// it has none ("max", -1) or no such file.
func readQuota(dir string, v2 bool) (float64, bool) {
	if v2 {
		b, err := os.ReadFile(path.Join(dir, "cpu.max"))
		if err != nil {
			return 0, false
		}
		f := strings.Fields(string(b))
		if len(f) != 2 || f[0] == "max" {
			return 0, false
		}
		return ratioOf(f[0], f[1])
	}
	q, err1 := os.ReadFile(path.Join(dir, "cpu.cfs_quota_us"))
	p, err2 := os.ReadFile(path.Join(dir, "cpu.cfs_period_us"))
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return ratioOf(strings.TrimSpace(string(q)), strings.TrimSpace(string(p)))
}

func ratioOf(quota, period string) (float64, bool) {
	q, err1 := strconv.ParseInt(quota, 10, 64)
	p, err2 := strconv.ParseInt(period, 10, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0, false
	}
	return float64(q) / float64(p), true
}
