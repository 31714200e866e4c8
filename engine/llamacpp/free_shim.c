// Safe freeing of a llama_context with the pinned ollama ggml.
//
// ~llama_context destroys its members in reverse order of declaration, and
// `backends` (std::vector<ggml_backend_ptr>) is declared after `sched`, so
// every ggml_backend_t is freed before ggml_backend_sched_free runs. Upstream
// that is harmless, but ollama's patch 0020 ("ggml: No alloc mode") makes
// ggml_backend_sched_free call sched->backends[b]->iface.reset(backend), a
// read of the already freed backend. The CPU backend's reset is NULL, so on
// the CPU the freed memory usually still reads NULL and nothing happens; the
// CUDA backend's reset is ggml_backend_cuda_reset, which then writes through
// the freed backend's freed context (ctx->pools[ctx->device][i] = NULL with
// ctx->device overwritten by the allocator): the segfault in llama_free.
//
// The binary is linked with -Wl,--wrap=ggml_backend_free (the #cgo LDFLAGS
// of free.go), so llama.cpp's calls of ggml_backend_free reach
// __wrap_ggml_backend_free. While asi1d_llama_free runs on this thread, the
// backends (up to ASI1D_MAX_DEFERRED; any beyond are freed at once) are only
// collected, and freed after llama_free returned, i.e. after the scheduler:
// the order ollama's own engine uses (scheduler, then backends). Other
// threads' calls, and this thread's outside asi1d_llama_free, go straight
// to the real ggml_backend_free. TestOpenCloseReopen (reopen_test.go)
// checks through free.go's deferredFrees that the wrap is in effect.
#include <stddef.h>
#include "ggml-backend.h"
#include "free_shim.h"

void __real_ggml_backend_free(ggml_backend_t backend);

#define ASI1D_MAX_DEFERRED 64

static __thread int deferring;
static __thread int ndeferred;
static __thread ggml_backend_t deferred[ASI1D_MAX_DEFERRED];

void __wrap_ggml_backend_free(ggml_backend_t backend) {
	if (deferring && backend != NULL && ndeferred < ASI1D_MAX_DEFERRED) {
		deferred[ndeferred++] = backend;
		return;
	}
	__real_ggml_backend_free(backend);
}

int asi1d_llama_free(struct llama_context * ctx) {
	deferring = 1;
	ndeferred = 0;
	llama_free(ctx);
	deferring = 0;
	int n = ndeferred;
	for (int i = 0; i < n; i++) {
		__real_ggml_backend_free(deferred[i]);
		deferred[i] = NULL;
	}
	ndeferred = 0;
	return n;
}
