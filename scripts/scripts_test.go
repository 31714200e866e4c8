// Package scripts holds the tests of the shell scripts beside it.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeCMake is a cmake that records its arguments and, on --build, leaves
// what the real build leaves in <build>/lib/ollama: the CUDA backend, the
// versioned ggml-base with its links, and CPU variants that must not ship.
const fakeCMake = `#!/usr/bin/env bash
echo "$*" >> "$FAKE_LOG"
if [ "$1" = --build ]; then
	d="$2/lib/ollama"; mkdir -p "$d"
	echo cuda > "$d/libggml-cuda.so"
	echo base > "$d/libggml-base.so.0.0.0"
	ln -sf libggml-base.so.0.0.0 "$d/libggml-base.so.0"
	ln -sf libggml-base.so.0 "$d/libggml-base.so"
	echo cpu > "$d/libggml-cpu-haswell.so"
fi
`

func fakeTools(t *testing.T) (bin, log string) {
	bin = t.TempDir()
	log = filepath.Join(t.TempDir(), "cmake.log")
	os.WriteFile(filepath.Join(bin, "cmake"), []byte(fakeCMake), 0o755)
	os.WriteFile(filepath.Join(bin, "nvcc"), []byte("#!/bin/sh\nexit 0\n"), 0o755)
	return bin, log
}

// fakeSource is the part of the ollama module tree the script checks for.
func fakeSource(t *testing.T) string {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "ml/backend/ggml/ggml/src/ggml-cuda"), 0o755)
	os.WriteFile(filepath.Join(src, "CMakeLists.txt"), []byte("project(x)\n"), 0o644)
	return src
}

func runScript(t *testing.T, bin, log string, args ...string) (string, error) {
	cmd := exec.Command("bash", append([]string{"build-gpu.sh"}, args...)...)
	// No ninja, nvidia-smi or readelf from the host: only the fakes and the
	// basic tools.
	cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/bin:/bin", "FAKE_LOG="+log, "CUDA_ARCHITECTURES=", "BUILD_GPU_SKIP_ELF_CHECK=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestBuildGPULayout(t *testing.T) {
	bin, log := fakeTools(t)
	src, prefix, build := fakeSource(t), t.TempDir(), filepath.Join(t.TempDir(), "b")
	out, err := runScript(t, bin, log, "--src", src, "--prefix", prefix, "--build", build, "--arch", "90", "--jobs", "16")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	calls, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimSpace(string(calls)), "\n")
	if len(lines) != 2 {
		t.Fatalf("cmake calls:\n%s", calls)
	}
	for _, want := range []string{"-S " + src, "-B " + build, "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_CUDA_ARCHITECTURES=90", "-DCMAKE_BUILD_RPATH=$ORIGIN"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("configure lacks %q: %s", want, lines[0])
		}
	}
	if lines[1] != "--build "+build+" --target ggml-cuda --parallel 16" {
		t.Errorf("build: %s", lines[1])
	}
	lib := filepath.Join(prefix, "lib", "ollama")
	ents, _ := os.ReadDir(lib)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := []string{"libggml-base.so", "libggml-base.so.0", "libggml-base.so.0.0.0", "libggml-cuda.so"}
	if !slices.Equal(names, want) {
		t.Fatalf("%s holds %v, want %v (no CPU backend: the binary has its own)", lib, names, want)
	}
	if target, err := os.Readlink(filepath.Join(lib, "libggml-base.so.0")); err != nil || target != "libggml-base.so.0.0.0" {
		t.Errorf("libggml-base.so.0 -> %q, %v: the links must be kept", target, err)
	}
}

func TestBuildGPUDryRunAndDefaults(t *testing.T) {
	bin, log := fakeTools(t)
	src, prefix := fakeSource(t), t.TempDir()
	out, err := runScript(t, bin, log, "--src", src, "--prefix", prefix, "--dry-run")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := os.Stat(log); err == nil {
		t.Error("dry run called cmake")
	}
	if _, err := os.Stat(filepath.Join(prefix, "lib")); err == nil {
		t.Error("dry run installed files")
	}
	// No GPU visible: the portable architecture list.
	for _, want := range []string{"-DCMAKE_CUDA_ARCHITECTURES=75\\;80\\;86\\;89\\;90", "--target ggml-cuda", "-> " + prefix + "/lib/ollama/"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if out, err := runScript(t, bin, log, "--src", t.TempDir(), "--prefix", prefix); err == nil || !strings.Contains(out, "has no CMakeLists.txt") {
		t.Errorf("a tree without ggml: %v\n%s", err, out)
	}
}
