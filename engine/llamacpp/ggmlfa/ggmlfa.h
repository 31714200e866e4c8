#pragma once
#ifdef __cplusplus
extern "C" {
#endif
// 1 when the tiled kernel is used where it applies (ASI1D_FA_KERNEL=ggml
// keeps ggml's own kernel everywhere).
int asi1d_fa_tiled_enabled(void);
// asi1d_fa_set_tiled switches the tiled kernel on or off (tests).
void asi1d_fa_set_tiled(int on);
// How many flash-attention ops ran through the tiled kernel (tiled=1) or
// ggml's (tiled=0).
long long asi1d_fa_calls(int tiled);
#ifdef __cplusplus
}
#endif
