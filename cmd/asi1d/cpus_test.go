package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fakeHost writes files (path relative to the fake root: content) and
// returns the root.
func fakeHost(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, s := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const (
	mountsV2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
	// This machine's layout: v1 controllers, an empty v2 hierarchy beside them.
	mountsV1 = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n" +
		"32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n" +
		"34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n" +
		"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)

func TestCPUsFrom(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		cpus  int
		want  int
		why   string // a word the reason must contain
	}{
		{"no cgroup files", map[string]string{}, 8, 8, "affinity"},
		{"v2 no limit", map[string]string{
			"proc/self/cgroup": "0::/user.slice/app\n", "proc/self/mountinfo": mountsV2,
			"sys/fs/cgroup/user.slice/app/cpu.max": "max 100000\n",
		}, 8, 8, "affinity"},
		{"v2 one CPU", map[string]string{
			"proc/self/cgroup": "0::/app\n", "proc/self/mountinfo": mountsV2,
			"sys/fs/cgroup/app/cpu.max": "100000 100000\n",
		}, 2, 1, "quota 1.00"},
		{"v2 half a CPU is still one thread", map[string]string{
			"proc/self/cgroup": "0::/app\n", "proc/self/mountinfo": mountsV2,
			"sys/fs/cgroup/app/cpu.max": "50000 100000\n",
		}, 4, 1, "quota 0.50"},
		{"v2 1.5 CPUs round to 2", map[string]string{
			"proc/self/cgroup": "0::/app\n", "proc/self/mountinfo": mountsV2,
			"sys/fs/cgroup/app/cpu.max": "150000 100000\n",
		}, 8, 2, "quota 1.50"},
		{"v2 parent's limit is lower", map[string]string{
			"proc/self/cgroup": "0::/kubepods/pod1/ctr\n", "proc/self/mountinfo": mountsV2,
			"sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "400000 100000\n",
			"sys/fs/cgroup/kubepods/pod1/cpu.max":     "300000 100000\n",
			"sys/fs/cgroup/kubepods/cpu.max":          "max 100000\n",
		}, 16, 3, "/sys/fs/cgroup/kubepods/pod1"},
		{"v2 quota above the affinity mask", map[string]string{
			"proc/self/cgroup": "0::/app\n", "proc/self/mountinfo": mountsV2,
			"sys/fs/cgroup/app/cpu.max": "800000 100000\n",
		}, 2, 2, "affinity"},
		{"v1 cpu,cpuacct quota", map[string]string{
			"proc/self/cgroup":    "4:memory:/x\n2:cpu,cpuacct:/docker/abc\n0::/\n",
			"proc/self/mountinfo": mountsV1,
			"sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us":  "200000\n",
			"sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us":             "-1\n",
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us":            "100000\n",
		}, 8, 2, "quota 2.00"},
		{"v1 no quota", map[string]string{
			"proc/self/cgroup":                            "2:cpu,cpuacct:/\n",
			"proc/self/mountinfo":                         mountsV1,
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us":  "-1\n",
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
		}, 2, 2, "affinity"},
		{"v1 mount root is the container's cgroup", map[string]string{
			"proc/self/cgroup":                    "2:cpu,cpuacct:/docker/abc\n",
			"proc/self/mountinfo":                 "32 31 0:29 /docker/abc /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpuacct,cpu\n",
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us":  "100000\n",
			"sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
		}, 2, 1, "quota 1.00"},
		{"a cpuset-only v1 line is not a quota", map[string]string{
			"proc/self/cgroup":                         "3:cpuset:/a\n",
			"proc/self/mountinfo":                      mountsV1,
			"sys/fs/cgroup/cpuset/a/cpu.cfs_quota_us":  "100000\n",
			"sys/fs/cgroup/cpuset/a/cpu.cfs_period_us": "100000\n",
		}, 4, 4, "affinity"},
		{"garbage", map[string]string{
			"proc/self/cgroup": "0::/app\n", "proc/self/mountinfo": mountsV2,
			"sys/fs/cgroup/app/cpu.max": "lots\n",
		}, 3, 3, "affinity"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeHost(t, tc.files)
			got, why := cpusFrom(root, tc.cpus)
			if got != tc.want || !strings.Contains(why, tc.why) {
				t.Fatalf("cpusFrom = %d (%s), want %d (%q)", got, why, tc.want, tc.why)
			}
			if strings.Contains(why, root) {
				t.Errorf("reason %q names the fake root", why)
			}
		})
	}
}

// The real host: never more than the affinity mask, never less than 1.
func TestUsableCPUsHere(t *testing.T) {
	n, why := usableCPUs()
	if n < 1 || n > runtime.NumCPU() {
		t.Fatalf("usableCPUs = %d (%s)", n, why)
	}
	t.Logf("usableCPUs here: %d (%s)", n, why)
}
