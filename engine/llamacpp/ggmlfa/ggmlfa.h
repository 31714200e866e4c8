#pragma once
#ifdef __cplusplus
extern "C" {
#endif
// 1 when asi1d's kernels (tiled and row) are used where they apply
// (ASI1D_FA_KERNEL=ggml keeps ggml's own kernel everywhere).
int asi1d_fa_tiled_enabled(void);
// asi1d_fa_set_tiled switches asi1d's kernels on or off (tests).
void asi1d_fa_set_tiled(int on);
// How many flash-attention ops ran through ggml's kernel (kernel=0),
// asi1d's tiled one (1) or its row one (2).
long long asi1d_fa_calls(int kernel);
// The instruction set the kernels were built for: "avx512", "avx2" or
// "portable" (plain C the compiler vectorizes as it can).
const char * asi1d_fa_isa(void);
// asi1d_fa_set_cache_tiles sets how many key/value tiles a thread keeps
// converted (tests; -1: as many as 8 MiB hold).
void asi1d_fa_set_cache_tiles(long long n);
#ifdef __cplusplus
}
#endif
