// C entry points over llama.cpp's C++ JSON-Schema-to-GBNF converter and its
// grammar sampler, so that C++ exceptions never cross into Go (a C++
// exception unwinding through cgo aborts the process).
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "llama.h"
#include "grammar_shim.h"

// Declarations from llama.cpp's common/json-schema-to-grammar.h (compiled
// into the binary by github.com/ollama/ollama/llama). Copied rather than
// included so the build needs no extra include path.
struct common_grammar_builder {
    std::function<std::string(const std::string &, const std::string &)> add_rule;
    std::function<std::string(const std::string &, const nlohmann::ordered_json &)> add_schema;
    std::function<void(nlohmann::ordered_json &)> resolve_refs;
};
struct common_grammar_options {
    bool dotall = false;
};
std::string build_grammar(const std::function<void(const common_grammar_builder &)> & cb,
                          const common_grammar_options & options);

static char * dup_string(const std::string & s) {
    char * p = static_cast<char *>(malloc(s.size() + 1));
    if (p == nullptr) {
        return nullptr;
    }
    memcpy(p, s.data(), s.size());
    p[s.size()] = 0;
    return p;
}

extern "C" char * asi1d_schema_grammar(const char * schema, const char * root, char ** err) {
    *err = nullptr;
    try {
        nlohmann::ordered_json j = nlohmann::ordered_json::parse(schema);
        std::string body = root != nullptr ? root : "";
        common_grammar_options opts;
        std::string g = build_grammar([&](const common_grammar_builder & b) {
            auto copy = j;
            b.resolve_refs(copy);
            if (body.empty()) {
                b.add_schema("root", copy);
                return;
            }
            std::string name = b.add_schema("payload", copy);
            std::string out;
            const std::string word = "VALUE";
            size_t at = 0;
            for (;;) {
                size_t k = body.find(word, at);
                if (k == std::string::npos) {
                    out += body.substr(at);
                    break;
                }
                out += body.substr(at, k - at) + name;
                at = k + word.size();
            }
            b.add_rule("root", out);
        }, opts);
        return dup_string(g);
    } catch (const std::exception & e) {
        *err = dup_string(e.what());
    } catch (...) {
        *err = dup_string("unknown error");
    }
    return nullptr;
}

extern "C" int asi1d_grammar_apply(struct llama_sampler * s, llama_token_data_array * cur) {
    try {
        llama_sampler_apply(s, cur);
        return 0;
    } catch (...) {
        return -1;
    }
}

extern "C" int asi1d_grammar_accept(struct llama_sampler * s, llama_token t) {
    try {
        llama_sampler_accept(s, t);
        return 0;
    } catch (...) {
        return -1;
    }
}

extern "C" struct llama_sampler * asi1d_grammar_init(const struct llama_vocab * vocab, const char * gbnf) {
    try {
        return llama_sampler_init_grammar(vocab, gbnf, "root");
    } catch (...) {
        return nullptr;
    }
}

extern "C" int asi1d_grammar_allows_each(struct llama_sampler * s, llama_token_data * cand, size_t n) {
    llama_token_data_array cur = { cand, n, -1, false };
    return asi1d_grammar_apply(s, &cur);
}

extern "C" bool asi1d_grammar_allows(struct llama_sampler * s, llama_token t) {
    llama_token_data one = { t, 0.0f, 0.0f };
    llama_token_data_array cur = { &one, 1, -1, false };
    if (asi1d_grammar_apply(s, &cur) != 0) {
        return false;
    }
    return one.logit != -INFINITY;
}
