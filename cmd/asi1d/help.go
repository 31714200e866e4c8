package main

import "github.com/asi1d/asi1d/cmd/asi1d/cliflag"

// logLevels are --log-level's words; trace is debug plus a line per
// scheduler step (scheduler.LevelTrace).
var logLevels = []string{"trace", "debug", "info", "warn", "error"}

const serveHeader = `Usage: asi1d serve [flags]

Serves a GGUF model over the ASI1 (and OpenAI) chat-completions API.
Flags take one dash or two (-model, --model); every flag can also be set
as ASI1D_<NAME> (--step-tokens: ASI1D_STEP_TOKENS); a flag wins over it.

`

// serveHelp gives serve's flags their short aliases (llama.cpp's where it
// has one) and the groups and one-line texts of serve -h. A flag missing
// from the groups is still listed, under Other.
func serveHelp(cs *cliflag.Set) {
	cs.Header = serveHeader
	for alias, name := range map[string]string{
		"m": "model", "a": "addr", "c": "ctx", "np": "parallel", "t": "threads", "ngl": "gpu-layers", "b": "batch",
	} {
		cs.Alias(alias, name)
	}
	help := func(name, arg, text string) { cs.Help(name, arg, text) }
	help("model", "FILE", "GGUF model file to serve")
	help("models-dir", "DIR", "serve every GGUF model of this catalog (asi1d models) instead")
	help("model-name", "ID", "model id served in the API")
	help("alias", "ID", "another model id accepted in requests (repeatable)")
	help("max-loaded-models", "", "with --models-dir: models loaded at once")
	help("max-model-memory", "SIZE", "with --models-dir: host memory the loaded models may take")
	help("max-gpu-memory", "SIZE", "with --models-dir: GPU memory the loaded models may take")
	help("keep-alive", "", "unload a model idle this long (0: keep it)")
	help("default-alias", "ID", "name that also answers for the default model (empty: none)")
	help("default-model", "ID", "with --models-dir: the default model (default: first preloaded, else first by id)")
	help("rescan", "", "with --models-dir: look for new, removed, replaced files this often (0: at start only)")
	help("gpu-layers", "", "layers to offload to a GPU")
	help("flash-attn", "auto|on|off", "flash attention")
	help("kv-unified", "", "one KV pool shared by all sequences")
	help("no-mem-check", "", "start even if the model looks too large for the memory")
	help("addr", "HOST:PORT", "listen address (0.0.0.0: every interface)")
	help("ctx", "", "KV cells shared by all requests (0: from the model and the memory)")
	help("parallel", "", "requests decoded together (0: from the context, 16-32)")
	help("threads", "", "CPU threads (0: the CPUs this process may use)")
	help("batch", "", "most tokens of one decode call")
	help("step-tokens", "", "token budget of a scheduler step (0: measured)")
	help("step-latency", "", "prompt work stretches a step to this many decode steps")
	help("thread-poll", "", "CPU thread pool polling level 0-100, -1: threads per decode")
	help("adapt-threads", "", "fewer threads while they starve for CPU time")
	help("playground", "", "the web playground at / (=false: off)")
	help("replica-id", "NAME", "replica name in the x-asi1d-replica header")
	help("drain-timeout", "", "on SIGTERM, how long running requests may take")
	help("max-queue", "", "requests waiting for a sequence; beyond: 503")
	help("ready-queue", "", "/ready answers 503 while this many wait (0: --max-queue)")
	help("body-limit", "BYTES", "largest request body")
	help("rate-rpm", "", "chat completions per key and minute (0: no limit)")
	help("rate-tpm", "", "tokens per key and minute (0: no limit)")
	help("redis-url", "URL", "share rate-limit counts of replicas in this Redis")
	help("max-connections", "", "open connections at most (0: no cap)")
	help("api-key", "KEY", "API key clients must send (repeatable; env comma-separated)")
	help("api-key-file", "FILE", "file with one API key per line")
	help("allowed-origins", "ORIGINS", "pages that may call the API from a browser (CORS)")
	help("tls-cert", "FILE", "serve HTTPS with this PEM certificate (needs --tls-key)")
	help("tls-key", "FILE", "PEM private key of --tls-cert")
	help("read-header-timeout", "", "a client must send its headers within this")
	help("read-timeout", "", "a client must send its whole request within this")
	help("write-timeout", "", "one write of an answer may block this long")
	help("idle-timeout", "", "an idle keep-alive connection is closed after this")
	help("log-level", "LEVEL", "trace (+ scheduler steps), debug, info, warn, error")
	help("log-format", "text|json", "log lines as text or JSON")
	help("session-dir", "DIR", "save and restore sessions' KV state here (empty: off)")
	help("session-max-bytes", "SIZE", "size of --session-dir's states at most")
	help("session-min-tokens", "", "shortest prefix worth saving or restoring, in tokens")
	cs.Groups(
		cliflag.Group{Title: "Model", Flags: []string{"model", "models-dir", "model-name", "alias", "default-alias", "default-model", "gpu-layers", "flash-attn",
			"kv-unified", "no-mem-check", "max-loaded-models", "max-model-memory", "max-gpu-memory", "keep-alive", "rescan"}},
		cliflag.Group{Title: "Serving", Flags: []string{"ctx", "parallel", "threads", "batch", "step-tokens", "step-latency",
			"thread-poll", "adapt-threads", "playground", "replica-id", "drain-timeout"}},
		cliflag.Group{Title: "Limits", Flags: []string{"max-queue", "ready-queue", "body-limit", "rate-rpm", "rate-tpm", "redis-url", "max-connections"}},
		cliflag.Group{Title: "Network, auth and TLS", Flags: []string{"addr", "api-key", "api-key-file", "allowed-origins", "tls-cert", "tls-key",
			"read-header-timeout", "read-timeout", "write-timeout", "idle-timeout"}},
		cliflag.Group{Title: "Logging", Flags: []string{"log-level", "log-format"}},
		cliflag.Group{Title: "Sessions", Flags: []string{"session-dir", "session-max-bytes", "session-min-tokens"}},
	)
}
