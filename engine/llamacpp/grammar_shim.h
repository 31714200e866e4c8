#ifndef ASI1D_GRAMMAR_SHIM_H
#define ASI1D_GRAMMAR_SHIM_H
#include "llama.h"
#ifdef __cplusplus
extern "C" {
#endif
// asi1d_schema_grammar converts a JSON Schema to GBNF. root, when non-empty,
// is the body of the root rule with the word VALUE standing for the schema.
// It returns a malloc'd grammar, or NULL with *err set to a malloc'd message.
char * asi1d_schema_grammar(const char * schema, const char * root, char ** err);
struct llama_sampler * asi1d_grammar_init(const struct llama_vocab * vocab, const char * gbnf);
int asi1d_grammar_apply(struct llama_sampler * s, llama_token_data_array * cur);
int asi1d_grammar_accept(struct llama_sampler * s, llama_token t);
bool asi1d_grammar_allows(struct llama_sampler * s, llama_token t);
// asi1d_grammar_allows_each applies the grammar to n candidates in place
// (refused ones get logit -INFINITY); 0 on success.
int asi1d_grammar_allows_each(struct llama_sampler * s, llama_token_data * cand, size_t n);
#ifdef __cplusplus
}
#endif
#endif
