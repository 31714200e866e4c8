// ggml's AMX matrix multiplication kernels (see ggmlamx.go).
#include "ggml-cpu/amx/mmq.cpp"
