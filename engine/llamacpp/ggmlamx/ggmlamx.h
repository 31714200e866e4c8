#pragma once
#ifdef __cplusplus
extern "C" {
#endif
// 1 when this translation unit was compiled for AMX-INT8 with AVX512-VNNI,
// the condition under which ggml-cpu registers its AMX buffer type.
int asi1d_amx_compiled(void);
// 1 when compiled so and the kernel granted this process AMX tile state, so
// that ggml registered the AMX buffer type (the weights it supports go there).
int asi1d_amx_ready(void);
#ifdef __cplusplus
}
#endif
