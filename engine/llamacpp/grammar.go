package llamacpp

/*
#include <stdlib.h>
#include <stdbool.h>
#include "grammar_shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unsafe"

	"github.com/asi1d/asi1d/engine"
)

var _ engine.GrammarCompiler = (*Backend)(nil)

// SchemaGrammar implements engine.GrammarCompiler with llama.cpp's own
// JSON-Schema-to-GBNF converter (common/json-schema-to-grammar.cpp, the one
// llama.cpp's server uses for response_format). It reports the converter's
// errors; keywords the converter does not know are ignored by it, so callers
// reject those first (see models.CheckSchema).
func (b *Backend) SchemaGrammar(schema []byte, root string) (string, error) {
	cs := C.CString(string(schema))
	defer C.free(unsafe.Pointer(cs))
	cr := C.CString(root)
	defer C.free(unsafe.Pointer(cr))
	var cerr *C.char
	g := C.asi1d_schema_grammar(cs, cr, &cerr)
	if g == nil {
		msg := "conversion failed"
		if cerr != nil {
			msg = C.GoString(cerr)
			C.free(unsafe.Pointer(cerr))
		}
		return "", fmt.Errorf("json schema to grammar: %s", strings.TrimSpace(msg))
	}
	defer C.free(unsafe.Pointer(g))
	return C.GoString(g), nil
}

// NewGrammar implements engine.GrammarCompiler. Parsing runs on the caller's
// goroutine (it reads only the immutable vocabulary), so a large grammar
// never stalls the scheduler loop.
func (b *Backend) NewGrammar(gbnf string) (engine.Grammar, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, engine.ErrClosed
	}
	cg := C.CString(gbnf)
	defer C.free(unsafe.Pointer(cg))
	s := C.asi1d_grammar_init(b.vocab, cg)
	if s == nil {
		// llama.cpp logged the parse error; grammars come from our own
		// converters, so this is a bug, not bad input.
		return nil, errors.New("llama.cpp could not parse the grammar (see the log)")
	}
	return &grammar{s: s}, nil
}

// grammar is a llama.cpp grammar sampler over the backend's vocabulary. It
// keeps its own scratch, so that the grammars of different requests may be
// used on different goroutines at once (the scheduler samples rows in
// parallel); one grammar is used by one goroutine at a time.
type grammar struct {
	s *C.struct_llama_sampler
	// Scratch token candidates, in C memory so that llama.cpp may keep no
	// Go pointer; grown on demand, freed by Close.
	cand  *C.llama_token_data
	ncand int
}

func (g *grammar) Allows(t engine.Token) bool {
	if g.s == nil {
		return false
	}
	return bool(C.asi1d_grammar_allows(g.s, C.llama_token(t)))
}

func (g *grammar) AllowsEach(toks []engine.Token, ok []bool) {
	if g.s == nil || len(toks) == 0 {
		return
	}
	cand := g.candidates(len(toks))
	for i, t := range toks {
		cand[i] = C.llama_token_data{id: C.llama_token(t)}
	}
	failed := C.asi1d_grammar_allows_each(g.s, &cand[0], C.size_t(len(toks))) != 0
	ninf := C.float(math.Inf(-1))
	for i := range toks {
		ok[i] = !failed && cand[i].logit != ninf
	}
}

func (g *grammar) Mask(logits []float32) {
	if g.s == nil || len(logits) == 0 {
		return
	}
	cand := g.candidates(len(logits))
	for i, l := range logits {
		cand[i] = C.llama_token_data{id: C.llama_token(i), logit: C.float(l)}
	}
	arr := C.llama_token_data_array{data: &cand[0], size: C.size_t(len(cand)), selected: -1}
	if C.asi1d_grammar_apply(g.s, &arr) != 0 {
		for i := range logits {
			logits[i] = float32(math.Inf(-1))
		}
		return
	}
	ninf := float32(math.Inf(-1))
	for i := range cand {
		if float32(cand[i].logit) == ninf {
			logits[cand[i].id] = ninf
		}
	}
}

func (g *grammar) Accept(t engine.Token) error {
	if g.s == nil {
		return errors.New("grammar: closed")
	}
	if C.asi1d_grammar_accept(g.s, C.llama_token(t)) != 0 {
		return fmt.Errorf("grammar: token %d not accepted", t)
	}
	return nil
}

func (g *grammar) Close() {
	if g.s != nil {
		C.llama_sampler_free(g.s)
		g.s = nil
	}
	if g.cand != nil {
		C.free(unsafe.Pointer(g.cand))
		g.cand, g.ncand = nil, 0
	}
}

// candidates returns the grammar's scratch array of n token candidates.
func (g *grammar) candidates(n int) []C.llama_token_data {
	if g.cand == nil || g.ncand < n {
		if g.cand != nil {
			C.free(unsafe.Pointer(g.cand))
		}
		g.cand = (*C.llama_token_data)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.llama_token_data{}))))
		g.ncand = n
	}
	return unsafe.Slice(g.cand, n)
}
