// Command asi1d-launcher is the bin/asi1d of a release: it picks the build of
// asi1d whose C and C++ kernels the CPU can run best and executes it in its
// place, with the same arguments, environment (plus ASI1D_CPU_VARIANT) and
// process id.
//
// Why several builds: ggml's CPU kernels are compiled by cgo with one -march
// into the binary, and a binary built for AVX-512 or AMX dies on an older CPU
// in its C++ static constructors, before any Go code could choose. llama.cpp
// and ollama load one shared CPU library per variant instead; for asi1d the
// statically linked binaries keep the build to `go build`, and the launcher is
// a few KB of pure Go (CGO_ENABLED=0) that runs on any CPU of its architecture.
//
// Layout (scripts/release.sh makes it):
//
//	bin/asi1d                      this launcher
//	lib/asi1d/asi1d-<variant>      one build per variant (see variants)
//	lib/ollama/                    the CUDA backend, when built
//
// ASI1D_CPU_VARIANT=<name> forces a variant; `asi1d-launcher variants` prints
// the table (name, compiler flags) that scripts/release.sh builds from
// (`variants-for ARCH` another architecture's), and `asi1d which` the variant
// the launcher would run here.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/klauspost/cpuid/v2"
)

// variant is one build of asi1d: its name, the flags its C and C++ code is
// compiled with, and whether this CPU can run it.
type variant struct {
	Name   string
	CFlags string
	Runs   func(c cpuid.CPUInfo) bool
}

// variants lists the builds per architecture, best first. The x86-64 ones
// follow ggml's own CPU variants (x64, haswell, skylakex, icelake,
// sapphirerapids) by the features their kernels use.
var variants = map[string][]variant{
	"amd64": {
		{"sapphirerapids", "-march=sapphirerapids", func(c cpuid.CPUInfo) bool {
			return c.X64Level() >= 4 && c.Supports(cpuid.AVX512VNNI, cpuid.AVX512VBMI, cpuid.AVX512BF16, cpuid.AVX512FP16, cpuid.AMXTILE, cpuid.AMXINT8)
		}},
		{"x86-64-v4-vnni", "-march=x86-64-v4 -mavx512vnni -mavx512vbmi", func(c cpuid.CPUInfo) bool {
			return c.X64Level() >= 4 && c.Supports(cpuid.AVX512VNNI, cpuid.AVX512VBMI)
		}},
		{"x86-64-v4", "-march=x86-64-v4", func(c cpuid.CPUInfo) bool { return c.X64Level() >= 4 }},
		{"x86-64-v3", "-march=x86-64-v3", func(c cpuid.CPUInfo) bool { return c.X64Level() >= 3 }},
		{"x86-64-v2", "-march=x86-64-v2", func(c cpuid.CPUInfo) bool { return c.X64Level() >= 2 }},
	},
	"arm64": {
		{"armv8.2-a-dotprod", "-march=armv8.2-a+dotprod+fp16", func(c cpuid.CPUInfo) bool {
			return c.Supports(cpuid.ASIMDDP, cpuid.FPHP, cpuid.ASIMDHP)
		}},
		{"armv8-a", "-march=armv8-a", func(cpuid.CPUInfo) bool { return true }},
	},
}

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	list := variants[runtime.GOARCH]
	if len(args) >= 2 && (args[1] == "variants" || args[1] == "variants-for") {
		if len(args) == 3 && args[1] == "variants-for" {
			list = variants[args[2]]
		}
		if len(list) == 0 {
			fmt.Fprintf(stderr, "asi1d-launcher: no CPU variants for %s\n", args[len(args)-1])
			return 2
		}
		for _, v := range list {
			fmt.Fprintf(stdout, "%s\t%s\n", v.Name, v.CFlags)
		}
		return 0
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "asi1d: cannot find my own path: %v\n", err)
		return 1
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		fmt.Fprintf(stderr, "asi1d: %v\n", err)
		return 1
	}
	root := filepath.Dir(filepath.Dir(exe))
	dir := filepath.Join(root, "lib", "asi1d")
	v, path, err := choose(list, cpuid.CPU, os.Getenv("ASI1D_CPU_VARIANT"), dir)
	if err != nil {
		fmt.Fprintf(stderr, "asi1d: %v\n", err)
		return 1
	}
	if len(args) == 2 && args[1] == "which" {
		fmt.Fprintf(stdout, "%s\t%s\n", v.Name, path)
		return 0
	}
	env := append(os.Environ(), "ASI1D_CPU_VARIANT="+v.Name)
	// The CUDA backend lies beside bin/, as lib/ollama; the variant's own
	// executable is one folder deeper, so name the folder for it.
	if os.Getenv("OLLAMA_LIBRARY_PATH") == "" {
		if st, err := os.Stat(filepath.Join(root, "lib", "ollama")); err == nil && st.IsDir() {
			env = append(env, "OLLAMA_LIBRARY_PATH="+filepath.Join(root, "lib", "ollama"))
		}
	}
	err = syscall.Exec(path, append([]string{args[0]}, args[1:]...), env)
	fmt.Fprintf(stderr, "asi1d: starting %s: %v\n", path, err)
	return 1
}

// choose returns the best variant this CPU runs whose build is in dir, or the
// one forced by name.
func choose(list []variant, c cpuid.CPUInfo, force, dir string) (variant, string, error) {
	if len(list) == 0 {
		return variant{}, "", fmt.Errorf("no CPU variants are defined for %s", runtime.GOARCH)
	}
	var missing []string
	for _, v := range list {
		if force != "" && v.Name != force {
			continue
		}
		path := filepath.Join(dir, "asi1d-"+v.Name)
		if force == "" && !v.Runs(c) {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			missing = append(missing, path)
			continue
		}
		return v, path, nil
	}
	if force != "" {
		if len(missing) > 0 {
			return variant{}, "", fmt.Errorf("ASI1D_CPU_VARIANT=%s: %s is missing", force, missing[0])
		}
		names := make([]string, len(list))
		for i, v := range list {
			names[i] = v.Name
		}
		return variant{}, "", fmt.Errorf("ASI1D_CPU_VARIANT=%q: want one of %v", force, names)
	}
	return variant{}, "", fmt.Errorf("no build of asi1d in %s runs on this CPU (%s; missing: %v)", dir, c.BrandName, missing)
}
