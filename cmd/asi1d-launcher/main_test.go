package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/cpuid/v2"
)

// cpu is a CPU with exactly these features.
func cpu(ids ...cpuid.FeatureID) cpuid.CPUInfo {
	var c cpuid.CPUInfo
	c.BrandName = "test CPU"
	c.Enable(ids...)
	return c
}

var (
	v2   = []cpuid.FeatureID{cpuid.SYSCALL, cpuid.CMOV, cpuid.CMPXCHG8, cpuid.X87, cpuid.FXSR, cpuid.MMX, cpuid.SSE, cpuid.SSE2, cpuid.CX16, cpuid.LAHF, cpuid.POPCNT, cpuid.SSE3, cpuid.SSE4, cpuid.SSE42, cpuid.SSSE3}
	v3   = append(append([]cpuid.FeatureID{}, v2...), cpuid.AVX, cpuid.AVX2, cpuid.BMI1, cpuid.BMI2, cpuid.F16C, cpuid.FMA3, cpuid.LZCNT, cpuid.MOVBE, cpuid.OSXSAVE)
	v4   = append(append([]cpuid.FeatureID{}, v3...), cpuid.AVX512F, cpuid.AVX512BW, cpuid.AVX512CD, cpuid.AVX512DQ, cpuid.AVX512VL)
	zen4 = append(append([]cpuid.FeatureID{}, v4...), cpuid.AVX512VNNI, cpuid.AVX512VBMI, cpuid.AVX512BF16)
	spr  = append(append([]cpuid.FeatureID{}, zen4...), cpuid.AVX512FP16, cpuid.AMXTILE, cpuid.AMXINT8, cpuid.AMXBF16)
)

// dirWith makes a lib/asi1d folder holding builds of these variants.
func dirWith(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, "asi1d-"+n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func allAMD64() []string {
	var names []string
	for _, v := range variants["amd64"] {
		names = append(names, v.Name)
	}
	return names
}

func TestChooseBestVariantTheCPURuns(t *testing.T) {
	dir := dirWith(t, allAMD64()...)
	for _, tc := range []struct {
		name string
		cpu  cpuid.CPUInfo
		want string
	}{
		{"sapphire rapids", cpu(spr...), "sapphirerapids"},
		{"zen 4 (AVX-512 with VNNI, no AMX)", cpu(zen4...), "x86-64-v4-vnni"},
		{"skylake-x", cpu(v4...), "x86-64-v4"},
		{"haswell", cpu(v3...), "x86-64-v3"},
		{"nehalem class", cpu(v2...), "x86-64-v2"},
		{"AMX without AVX-512 FP16 is not a Sapphire Rapids", cpu(append(append([]cpuid.FeatureID{}, zen4...), cpuid.AMXTILE, cpuid.AMXINT8)...), "x86-64-v4-vnni"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, path, err := choose(variants["amd64"], tc.cpu, "", dir)
			if err != nil {
				t.Fatal(err)
			}
			if v.Name != tc.want || path != filepath.Join(dir, "asi1d-"+tc.want) {
				t.Fatalf("chose %s (%s), want %s", v.Name, path, tc.want)
			}
		})
	}
}

func TestChooseSkipsMissingBuilds(t *testing.T) {
	dir := dirWith(t, "x86-64-v3", "x86-64-v2")
	v, _, err := choose(variants["amd64"], cpu(spr...), "", dir)
	if err != nil || v.Name != "x86-64-v3" {
		t.Fatalf("got %q, %v; want x86-64-v3", v.Name, err)
	}
	if _, _, err := choose(variants["amd64"], cpu(v2...), "", dirWith(t, "x86-64-v3")); err == nil || !strings.Contains(err.Error(), "runs on this CPU") {
		t.Fatalf("a v2 CPU with only a v3 build: %v", err)
	}
}

func TestChooseForced(t *testing.T) {
	dir := dirWith(t, allAMD64()...)
	v, _, err := choose(variants["amd64"], cpu(spr...), "x86-64-v2", dir)
	if err != nil || v.Name != "x86-64-v2" {
		t.Fatalf("forced x86-64-v2: got %q, %v", v.Name, err)
	}
	if _, _, err := choose(variants["amd64"], cpu(spr...), "pentium", dir); err == nil || !strings.Contains(err.Error(), "want one of") {
		t.Fatalf("unknown forced variant: %v", err)
	}
}

// Every variant's flags are ones scripts/release.sh can hand to the compiler:
// one -march first, nothing the shell would split oddly.
func TestVariantsTable(t *testing.T) {
	for arch, list := range variants {
		seen := map[string]bool{}
		for _, v := range list {
			if seen[v.Name] || strings.ContainsAny(v.Name, " \t/") {
				t.Errorf("%s: bad or repeated name %q", arch, v.Name)
			}
			seen[v.Name] = true
			if !strings.HasPrefix(v.CFlags, "-march=") || strings.ContainsAny(v.CFlags, "\t\"'") {
				t.Errorf("%s/%s: flags %q", arch, v.Name, v.CFlags)
			}
		}
		if last := list[len(list)-1]; !last.Runs(cpu(v2...)) && arch == "amd64" {
			t.Errorf("%s: the last variant %s must run on any x86-64-v2 CPU", arch, last.Name)
		}
	}
}
