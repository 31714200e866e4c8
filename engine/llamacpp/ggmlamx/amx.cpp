// ggml's AMX buffer type and its registration (see ggmlamx.go).
#include "ggml-cpu/amx/amx.cpp"

#include "ggmlamx.h"

extern "C" int asi1d_amx_compiled(void) {
#if defined(__AMX_INT8__) && defined(__AVX512VNNI__)
    return 1;
#else
    return 0;
#endif
}

extern "C" int asi1d_amx_ready(void) {
#if defined(__AMX_INT8__) && defined(__AVX512VNNI__)
    return ggml_backend_amx_buffer_type() != nullptr;
#else
    return 0;
#endif
}
