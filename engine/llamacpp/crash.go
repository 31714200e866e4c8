package llamacpp

/*
#include <execinfo.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static struct sigaction asi1d_prev_segv, asi1d_prev_bus, asi1d_prev_abrt;

static void asi1d_crash_handler(int sig, siginfo_t *info, void *uctx) {
	static const char msg[] = "\nasi1d: fatal signal; C backtrace (ASI1D_C_BACKTRACE=1):\n";
	write(2, msg, sizeof msg - 1);
	void *frames[64];
	int n = backtrace(frames, 64);
	backtrace_symbols_fd(frames, n, 2);
	struct sigaction *prev = sig == SIGSEGV ? &asi1d_prev_segv : sig == SIGBUS ? &asi1d_prev_bus : &asi1d_prev_abrt;
	// Hand over to Go's handler for the goroutine traceback and the exit.
	if (prev->sa_flags & SA_SIGINFO) {
		if (prev->sa_sigaction) { prev->sa_sigaction(sig, info, uctx); return; }
	} else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
		prev->sa_handler(sig);
		return;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void asi1d_install_crash_handler(void) {
	void *warm[1];
	backtrace(warm, 1); // loads libgcc's unwinder now, not inside the handler
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = asi1d_crash_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &asi1d_prev_segv);
	sigaction(SIGBUS, &sa, &asi1d_prev_bus);
	sigaction(SIGABRT, &sa, &asi1d_prev_abrt);
}
*/
import "C"

import "os"

// With ASI1D_C_BACKTRACE=1 a crash in C code (SIGSEGV, SIGBUS, SIGABRT)
// first prints the C frames (glibc's backtrace_symbols_fd; gdb is not on
// the GPU machines), then goes on to Go's own handler. For diagnosis only
// (scripts/gpu-check.sh sets it): it replaces Go's handlers for those
// signals.
func init() {
	if os.Getenv("ASI1D_C_BACKTRACE") == "1" {
		C.asi1d_install_crash_handler()
	}
}
