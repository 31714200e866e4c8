package engine

// Grammar constrains which tokens may come next in one sequence (structured
// output: JSON Schema, tool calls). A Grammar belongs to one request; after
// the request is handed to the scheduler only the scheduler calls it, from
// its loop or from one of its sampling workers, never two calls at once.
// Grammars of different requests are used concurrently, so they may share
// nothing mutable.
//
// The scheduler samples without the grammar first and asks Allows about the
// token it drew; only when the grammar refuses it does it Mask the row and
// sample again. A model that mostly agrees with the grammar therefore pays
// for one check per token, not for a pass over the whole vocabulary.
type Grammar interface {
	// Allows reports whether t may come next. An end-of-generation token is
	// allowed only where the grammar may end.
	Allows(t Token) bool
	// AllowsEach sets ok[i] to Allows(toks[i]), in one call.
	AllowsEach(toks []Token, ok []bool)
	// Mask sets the logit of every token that may not come next to -Inf.
	// len(logits) is the vocabulary size.
	Mask(logits []float32)
	// Accept advances the grammar over t, which Allows must have accepted.
	// End-of-generation tokens are not passed to Accept.
	Accept(t Token) error
	// Close frees the grammar. It is safe to call twice.
	Close()
}

// GrammarCompiler is implemented by backends that can constrain sampling.
type GrammarCompiler interface {
	// SchemaGrammar converts a JSON Schema into a GBNF grammar. With root
	// empty the grammar's root is the schema's value; otherwise root is the
	// GBNF body of the root rule, in which the word VALUE names the schema's
	// rule (for example `"<tool_call>\n" VALUE "\n</tool_call>"`).
	SchemaGrammar(schema []byte, root string) (string, error)
	// NewGrammar parses a GBNF grammar (rule "root") over the vocabulary.
	NewGrammar(gbnf string) (Grammar, error)
}
