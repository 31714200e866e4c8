package llamacpp

/*
#include <stdint.h>
#include <stdbool.h>
*/
import "C"

import "runtime/cgo"

// goLoadProgress is llama.cpp's model-load progress callback: handle is a
// cgo.Handle of Options.Progress. It always lets the load go on.
//
//export goLoadProgress
func goLoadProgress(progress C.float, handle C.uintptr_t) C.bool {
	if f, ok := cgo.Handle(handle).Value().(func(float64)); ok {
		f(float64(progress))
	}
	return true
}
