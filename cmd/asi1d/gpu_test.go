package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asi1d/asi1d/internal/testutil"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
)

// fakeCUDALibrary builds a libggml-cuda.so that, like a real one, needs
// libggml-base.so.0, and leaves it in dir without that library: the layout
// of the old Dockerfile.cuda. It returns false when no C compiler is there.
func fakeCUDALibrary(t *testing.T, dir string) bool {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		return false
	}
	build := t.TempDir()
	src := filepath.Join(build, "x.c")
	os.WriteFile(src, []byte("int ggml_base_thing(void) { return 1; }\n"), 0o644)
	steps := [][]string{
		{cc, "-shared", "-fPIC", "-o", filepath.Join(build, "libggml-base.so"), "-Wl,-soname,libggml-base.so.0", src},
		{cc, "-shared", "-fPIC", "-o", filepath.Join(dir, "libggml-cuda.so"), src, "-L" + build, "-Wl,--no-as-needed", "-lggml-base"},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", s, err, out)
		}
	}
	return true
}

// With --gpu-layers > 0 and no GPU backend, serve refuses to start before it
// listens, with one error line naming the libraries looked for, the folder
// and the reason, and a non-zero exit.
func TestServeRefusesGPULayersWithoutGPU(t *testing.T) {
	model := testmodel.Path(t, testmodel.Stories260K)
	cases := map[string]struct {
		setup func(t *testing.T, dir string) bool
		want  []string
	}{
		"no folder": {
			func(t *testing.T, dir string) bool { return true },
			[]string{"no such folder"},
		},
		"empty folder": {
			func(t *testing.T, dir string) bool { return os.MkdirAll(dir, 0o755) == nil },
			[]string{"no GPU backend library there"},
		},
		"cuda without ggml-base": {
			func(t *testing.T, dir string) bool {
				os.MkdirAll(dir, 0o755)
				return fakeCUDALibrary(t, dir)
			},
			[]string{"libggml-cuda.so did not load", "libggml-base.so.0"},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "lib", "ollama")
			if !c.setup(t, dir) {
				testutil.Need(t, "a C compiler (to build a fake backend library)", errors.New("cc failed"))
			}
			t.Setenv("OLLAMA_LIBRARY_PATH", dir)
			// Hold the port: had serve listened before the check, the error
			// would be "address already in use" instead.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var out, errb bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code := run(ctx, []string{"serve", "--model", model, "--gpu-layers", "1", "--addr", ln.Addr().String(), "--log-level", "error"}, &out, &errb, noenv)
			if code == 0 {
				t.Fatal("exit code 0")
			}
			lines := strings.Split(strings.TrimRight(errb.String(), "\n"), "\n")
			if len(lines) != 1 {
				t.Fatalf("want one error line, got:\n%s", errb.String())
			}
			want := append([]string{"asi1d: --gpu-layers 1 but no GPU backend loaded", "libggml-cuda", dir}, c.want...)
			for _, w := range want {
				if !strings.Contains(lines[0], w) {
					t.Errorf("error lacks %q:\n%s", w, lines[0])
				}
			}
		})
	}
}
