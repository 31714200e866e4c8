package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/asi1d/asi1d/cmd/asi1d/cliflag"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/engine/sessions"
	"github.com/asi1d/asi1d/server"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// IsList makes its environment variable comma-separated (cliflag.Lister).
func (l *stringList) IsList() bool { return true }

// serveConfig is asi1d serve's configuration, read once from flags and the
// matching ASI1D_* environment variables (a flag given on the command line
// wins over the environment).
type serveConfig struct {
	Model        string
	ModelsDir    string
	ModelName    string
	Aliases      stringList
	DefaultAlias string
	DefaultModel string
	Rescan       time.Duration
	Addr         string
	Ctx          int
	Parallel     int
	Threads      int
	Batch        int
	StepTokens   int
	StepLatency  float64
	MaxQueue     int
	ReadyQueue   int
	GPULayers    int
	KVUnified    bool
	NoMemCheck   bool
	Flash        string
	ThreadPoll   int
	AdaptThreads bool
	APIKeys      stringList
	APIKeyFile   string
	BodyLimit    int64
	DrainTimeout time.Duration
	ReplicaID    string
	LogLevel     string
	LogFormat    string
	Playground   bool
	// AllowedOrigins: web origins that may call the API from a browser (CORS).
	AllowedOrigins stringList
	// Limits, TLS and connection handling (limits.go, listen.go).
	RateRPM           int64
	RateTPM           int64
	RedisURL          string
	TLSCert           string
	TLSKey            string
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxConnections    int
	// The models of a catalog (models.go).
	MaxLoadedModels int
	MaxModelMemory  byteSize
	MaxGPUMemory    byteSize
	KeepAlive       time.Duration
	// Session states on disk (sessions.go).
	SessionDir       string
	SessionMaxBytes  byteSize
	SessionMinTokens int
}

// byteSize is a flag of a size in bytes: a number with an optional unit
// (KB, MiB, GiB, ...; go-humanize's ParseBytes).
type byteSize uint64

func (b *byteSize) String() string {
	if *b == 0 {
		return "0"
	}
	return humanize.IBytes(uint64(*b))
}

func (b *byteSize) Set(v string) error {
	n, err := humanize.ParseBytes(v)
	if err != nil {
		return fmt.Errorf("not a size: %q (e.g. 512MiB, 8GiB)", v)
	}
	*b = byteSize(n)
	return nil
}

// Want says what Set accepts (cliflag.Wanter).
func (b *byteSize) Want() string { return "a size such as 512MiB or 8GiB" }

// defaultModel is used when no model is configured and it exists: the demo
// model the repository ships (from its root, where make run starts).
const defaultModel = "models/stories260K/stories260K.gguf"

func envName(flagName string) string {
	return "ASI1D_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseServe reads serve's flags and environment.
func parseServe(args []string, getenv func(string) string) (*serveConfig, error) {
	return parseServeTo(args, getenv, io.Discard)
}

// parseServeTo is parseServe that prints -h's help to stdout (and returns
// cliflag.ErrHelp).
func parseServeTo(args []string, getenv func(string) string, stdout io.Writer) (*serveConfig, error) {
	c := &serveConfig{}
	cs := cliflag.New("asi1d serve")
	cs.Env = envName
	fs := cs.FlagSet
	fs.StringVar(&c.Model, "model", "", "GGUF model file (default "+defaultModel+" when it exists)")
	fs.StringVar(&c.ModelsDir, "models-dir", "", "serve every GGUF model under this directory, with the settings of its "+"models.json"+" (see asi1d models); instead of --model")
	fs.IntVar(&c.MaxLoadedModels, "max-loaded-models", 3, "with --models-dir: models loaded at once at most; the least recently used idle one is unloaded for another (0: no limit)")
	fs.Var(&c.MaxModelMemory, "max-model-memory", "with --models-dir: host memory the loaded models may take by their estimates (weights, KV cache, buffers), e.g. 16GiB (0: no limit)")
	fs.Var(&c.MaxGPUMemory, "max-gpu-memory", "with --models-dir: GPU memory the loaded models may take by their estimates (0: no limit)")
	fs.DurationVar(&c.KeepAlive, "keep-alive", 0, "unload a model after this long without requests (0: keep it until another needs the room)")
	fs.StringVar(&c.ModelName, "model-name", "", "with --model: the model's id in the API (default: the file's base name without .gguf)")
	fs.Var(&c.Aliases, "alias", "with --model: further model id accepted in requests (repeatable; env: comma-separated); with --models-dir the manifest's aliases")
	fs.StringVar(&c.DefaultAlias, "default-alias", server.DefaultModelID, "name that answers for the default model besides its own id (what ASI1 clients send); empty: none")
	fs.StringVar(&c.DefaultModel, "default-model", "", "with --models-dir: the id of the default model, which --default-alias names (default: the first preloaded model, else the first by id)")
	fs.DurationVar(&c.Rescan, "rescan", 5*time.Second, "with --models-dir: look for new, removed and replaced model files this often (0: only at start)")
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "listen address")
	fs.IntVar(&c.Ctx, "ctx", 0, "KV cells of the pool the --parallel sequences share; one request uses at most the model's trained context of it (0: twice the trained context, capped to fit the memory; see docs/SERVING-CONFIG.md)")
	fs.IntVar(&c.Parallel, "parallel", 0, "sequences decoded together (concurrent requests; 0: from the pool, 16 to 32)")
	fs.IntVar(&c.Threads, "threads", 0, "CPU threads (0: the CPUs this process may use: its affinity mask capped by its cgroup CPU quota)")
	fs.IntVar(&c.Batch, "batch", 512, "most tokens one llama_decode call may carry")
	fs.IntVar(&c.StepTokens, "step-tokens", 0, "token budget of one scheduler step, decode tokens first, then prompt chunks; 0: sized from the measured cost of a pass (64 on a CPU, up to --batch on a GPU)")
	fs.Float64Var(&c.StepLatency, "step-latency", scheduler.DefaultStepLatency, "a step that adds prompt work to running streams lasts at most this many decode-only steps (measured); negative: only --step-tokens bounds it")
	fs.IntVar(&c.MaxQueue, "max-queue", 64, "requests that may wait for a sequence; beyond: 503 server_overloaded")
	fs.IntVar(&c.ReadyQueue, "ready-queue", 0, "/ready answers 503 while this many requests wait (0: max-queue)")
	fs.IntVar(&c.GPULayers, "gpu-layers", 0, "layers to offload to a GPU (needs a GPU build)")
	fs.BoolVar(&c.KVUnified, "kv-unified", true, "one KV pool shared by all sequences; false: ctx/parallel cells each")
	fs.BoolVar(&c.NoMemCheck, "no-mem-check", false, "start even if weights and KV cache look larger than the available memory")
	fs.Var(cliflag.NewEnum(&c.Flash, "auto", "auto", "on", "off"), "flash-attn", "flash attention: auto (on for x86-64 CPUs with AVX2 or AVX-512, asi1d's kernels, docs/CPU.md; llama.cpp's choice with --gpu-layers), on or off")
	fs.IntVar(&c.ThreadPoll, "thread-poll", 0, "CPU thread pool kept between decodes, its workers polling at this level (0-100; 0: sleep at once); -1: ggml's threads made per decode")
	fs.BoolVar(&c.AdaptThreads, "adapt-threads", true, "on a CPU-only model, run fewer threads while they are starved of CPU time (a busy host, a spent cgroup quota) and try more again later")
	fs.Var(&c.APIKeys, "api-key", "API key clients must send as a bearer token (repeatable; env: comma-separated)")
	fs.StringVar(&c.APIKeyFile, "api-key-file", "", "file with one API key per line")
	fs.Var(&c.AllowedOrigins, "allowed-origins", "web origins (scheme://host[:port], comma-separated or repeated) whose pages may call the API from a browser (CORS); * for any; default: localhost, 127.0.0.1 and [::1] on any port, and always the server's own")
	fs.Int64Var(&c.BodyLimit, "body-limit", 4<<20, "largest request body in bytes")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long running requests may take to finish")
	fs.StringVar(&c.ReplicaID, "replica-id", "", "replica name sent in the x-asi1d-replica response header (default: the host name)")
	fs.Var(cliflag.NewEnum(&c.LogLevel, "info", logLevels...), "log-level", "trace (debug and every scheduler step), debug, info, warn or error")
	fs.Var(cliflag.NewEnum(&c.LogFormat, "text", "text", "json"), "log-format", "text or json (one object a line)")
	fs.BoolVar(&c.Playground, "playground", true, "serve the web playground (a chat page for people) at /")
	fs.Int64Var(&c.RateRPM, "rate-rpm", 0, "chat completions per API key (per client address without keys) and minute; beyond: 429 (0: no limit)")
	fs.Int64Var(&c.RateTPM, "rate-tpm", 0, "tokens per API key and minute, prompt + max_tokens reserved up front and settled to the real usage (0: no limit)")
	fs.StringVar(&c.RedisURL, "redis-url", "", "share the rate-limit counts of several replicas in this Redis (redis://host:port/db); unreachable: counted in the process")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file; needs --tls-key")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key file of --tls-cert")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "a client must send its request headers within this")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", 60*time.Second, "a client must send its whole request (headers and body) within this; streams are not cut by it")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 30*time.Second, "one write of an answer may block this long; a client that stops reading its stream is dropped")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 60*time.Second, "an idle keep-alive connection is closed after this")
	fs.IntVar(&c.MaxConnections, "max-connections", 1024, "open connections at most; beyond, a new one is answered 503 server_overloaded and closed (0: no cap)")
	fs.StringVar(&c.SessionDir, "session-dir", "", "save the KV state of sessions (x-session-id) here on eviction and drain, and restore it on their next turn; replicas may share it (empty: off)")
	c.SessionMaxBytes = byteSize(sessions.DefaultMaxBytes)
	fs.Var(&c.SessionMaxBytes, "session-max-bytes", "size of --session-dir's states at most, e.g. 10GiB; beyond, the least recently used go")
	fs.IntVar(&c.SessionMinTokens, "session-min-tokens", sessions.DefaultMinTokens, "shortest cached prefix worth saving, and least gain worth restoring, in tokens")
	serveHelp(cs)
	if err := cs.Parse(args, getenv, stdout); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags start with - or --; see asi1d serve -h)", fs.Arg(0))
	}
	if c.APIKeyFile != "" {
		keys, err := readKeyFile(c.APIKeyFile)
		if err != nil {
			return nil, err
		}
		c.APIKeys = append(c.APIKeys, keys...)
	}
	return c, c.validate()
}

func readKeyFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("api key file: %w", err)
	}
	defer f.Close()
	var keys []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k := strings.TrimSpace(sc.Text()); k != "" && !strings.HasPrefix(k, "#") {
			keys = append(keys, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("api key file %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("api key file %s holds no key", path)
	}
	return keys, nil
}

func (c *serveConfig) validate() error {
	switch {
	case c.Parallel < 0 || c.Parallel > 256:
		return fmt.Errorf("--parallel must be 1..256, or 0 for the default, got %d", c.Parallel)
	case c.Ctx != 0 && c.Ctx < 16:
		return fmt.Errorf("--ctx must be at least 16, or 0 for the default, got %d", c.Ctx)
	case c.Ctx > 0 && c.Parallel > 0 && c.Ctx/c.Parallel < 16 && !c.KVUnified:
		return fmt.Errorf("--ctx %d leaves under 16 tokens to each of %d sequences", c.Ctx, c.Parallel)
	case c.Rescan < 0:
		return fmt.Errorf("--rescan cannot be negative, got %s", c.Rescan)
	case c.Batch < 1:
		return fmt.Errorf("--batch must be positive, got %d", c.Batch)
	case c.StepTokens < 0:
		return fmt.Errorf("--step-tokens must be 0 (sized from the cost of a pass) or positive, got %d", c.StepTokens)
	case c.MaxQueue < 1:
		return fmt.Errorf("--max-queue must be positive, got %d", c.MaxQueue)
	case c.Threads < 0 || c.GPULayers < 0 || c.ReadyQueue < 0:
		return errors.New("--threads, --gpu-layers and --ready-queue cannot be negative")
	case c.BodyLimit < 1024:
		return fmt.Errorf("--body-limit must be at least 1024, got %d", c.BodyLimit)
	case c.ThreadPoll < -1 || c.ThreadPoll > 100:
		return fmt.Errorf("--thread-poll must be -1..100, got %d", c.ThreadPoll)
	case c.Flash != "auto" && c.Flash != "on" && c.Flash != "off":
		return fmt.Errorf("--flash-attn must be auto, on or off, got %q", c.Flash)
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("--log-format must be text or json, got %q", c.LogFormat)
	case c.SessionMaxBytes < 1 || c.SessionMinTokens < 1:
		return errors.New("--session-max-bytes and --session-min-tokens must be positive")
	case c.ModelsDir != "" && (c.ModelName != "" || len(c.Aliases) > 0):
		return errors.New("--model-name and --alias name the one model of --model; with --models-dir a model's id is its file name or manifest entry, its aliases the manifest's")
	case c.DefaultModel != "" && c.ModelsDir == "":
		return errors.New("--default-model picks a model of --models-dir; with --model the default model is that file")
	case c.RateRPM < 0 || c.RateTPM < 0 || c.MaxConnections < 0:
		return errors.New("--rate-rpm, --rate-tpm and --max-connections cannot be negative")
	case c.RedisURL != "" && c.RateRPM == 0 && c.RateTPM == 0:
		return errors.New("--redis-url shares rate-limit counts: set --rate-rpm or --rate-tpm too")
	case c.Model != "" && c.ModelsDir != "":
		return errors.New("--model and --models-dir go separately: one file, or a catalog (the manifest's aliases replace --alias)")
	case c.MaxLoadedModels < 0 || c.KeepAlive < 0:
		return errors.New("--max-loaded-models and --keep-alive cannot be negative")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case c.ReadHeaderTimeout <= 0 || c.ReadTimeout <= 0 || c.WriteTimeout <= 0 || c.IdleTimeout <= 0:
		return errors.New("--read-header-timeout, --read-timeout, --write-timeout and --idle-timeout must be positive")
	}
	if err := server.CheckOrigins(c.AllowedOrigins); err != nil {
		return fmt.Errorf("--allowed-origins: %w", err)
	}
	return nil
}
