#ifndef ASI1D_FREE_SHIM_H
#define ASI1D_FREE_SHIM_H
#include "llama.h"
#ifdef __cplusplus
extern "C" {
#endif
// asi1d_llama_free frees a context in an order that is safe with the
// pinned ggml (see free_shim.c); it returns how many backends it freed
// after the context's scheduler.
int asi1d_llama_free(struct llama_context * ctx);
#ifdef __cplusplus
}
#endif
#endif
