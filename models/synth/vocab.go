package synth

import (
	"fmt"
	"strings"
)

// Token types of tokenizer.ggml.token_type (llama.cpp's llama_token_type).
const (
	tokNormal      int32 = 1
	tokUnknown     int32 = 2
	tokControl     int32 = 3
	tokUserDefined int32 = 4
	tokByte        int32 = 6
)

// spaceMark is SentencePiece's word-boundary mark, U+2581.
const spaceMark = "▁"

// vocab is a SentencePiece-style vocabulary.
type vocab struct {
	tokens []string
	scores []float32
	types  []int32
	ids    map[string]int32
	bos    int32
	eos    int32
	addBOS bool
}

func (v *vocab) add(text string, score float32, typ int32) bool {
	if _, dup := v.ids[text]; dup || len(v.tokens) >= cap(v.tokens) {
		return false
	}
	v.ids[text] = int32(len(v.tokens))
	v.tokens = append(v.tokens, text)
	v.scores = append(v.scores, score)
	v.types = append(v.types, typ)
	return true
}

// full reports whether the vocabulary has all its n tokens.
func (v *vocab) full() bool { return len(v.tokens) == cap(v.tokens) }

// special is a template's special token and its type.
type special struct {
	text string
	typ  int32
}

// templateSpecials are the special tokens each template adds after the
// byte tokens. As in Qwen3's GGUF, <think>, </think>, <tool_call> and
// </tool_call> are user-defined tokens (Hugging Face "special": false):
// always matched when tokenizing and rendered as their text, but not
// control tokens.
var templateSpecials = map[string][]special{
	"": nil,
	TemplateChatMLThink: {
		{"<|im_start|>", tokControl}, {"<|im_end|>", tokControl},
		{"<think>", tokUserDefined}, {"</think>", tokUserDefined},
		{"<tool_call>", tokUserDefined}, {"</tool_call>", tokUserDefined},
	},
	TemplateLlama3: {
		{"<|begin_of_text|>", tokControl}, {"<|start_header_id|>", tokControl},
		{"<|end_header_id|>", tokControl}, {"<|eot_id|>", tokControl},
	},
}

// commonWords are the first word pieces of every vocabulary, most useful
// first (small vocabularies keep only a prefix of the list).
var commonWords = strings.Fields(`
the a of and to in is it you that he was for on are as with his they at be this
have from or one had by but not what all were we when your can said there an
each which she do how their if will up other about out many then them these so
some her would make like him into time has look two more write go see number no
way could people my than first been call who its now find long down day did get
come made may part over new sound take only little work know place year live me
back give most very after thing our just name good sentence man think say great
where help through much before line right too mean old any same tell boy follow
came want show also around form three small set put end does another well large
must big even such because turn here why ask went men read need land different
home us move try kind hand picture again change off play spell air away animal
house point page letter mother answer found study still learn should world high
yes let question reason step tool result weather city today once upon girl hello
user assistant system function value true false null ok sure please thank thanks`)

// extraChars are the single characters besides letters and digits.
const extraChars = ".,!?'\":;-()[]{}/\\_=+*&%$#@<>|~`^"

// buildVocab makes the vocabulary of n tokens for a template: <unk>, <s>,
// </s>, the 256 byte tokens <0x00>..<0xFF>, the template's special tokens,
// then normal pieces with descending scores. Normal pieces are prefix
// closed (every prefix of a piece is a piece), so SentencePiece merges can
// reach every one of them: "▁", single characters, "▁" + letters and
// digits, the common words with and without "▁" (with their prefixes),
// then generated lowercase pieces by length and alphabetical order ("▁aa",
// ..., "aa", ..., "▁aaa", ...) until the vocabulary is full.
func buildVocab(n int, template string, pieces ...string) (*vocab, error) {
	specials, ok := templateSpecials[template]
	if !ok {
		return nil, fmt.Errorf("unknown template %q", template)
	}
	minN := 3 + 256 + len(specials) + len(pieces) + 1
	if n < minN {
		return nil, fmt.Errorf("vocabulary of %d tokens is too small: template %q needs at least %d", n, template, minN)
	}
	v := &vocab{tokens: make([]string, 0, n), scores: make([]float32, 0, n), types: make([]int32, 0, n),
		ids: make(map[string]int32, n), bos: 1, eos: 2, addBOS: true}
	v.add("<unk>", 0, tokUnknown)
	v.add("<s>", 0, tokControl)
	v.add("</s>", 0, tokControl)
	for b := range 256 {
		v.add(fmt.Sprintf("<0x%02X>", b), 0, tokByte)
	}
	for _, s := range specials {
		v.add(s.text, 0, s.typ)
	}
	for _, p := range pieces {
		if !v.add(p, 0, tokNormal) {
			return nil, fmt.Errorf("extra piece %q is already in the vocabulary", p)
		}
	}
	switch template {
	case TemplateChatMLThink: // Qwen: no BOS in prompts, <|im_end|> ends a turn
		v.eos, v.addBOS = v.ids["<|im_end|>"], false
	case TemplateLlama3: // the template writes <|begin_of_text|> itself
		v.bos, v.eos = v.ids["<|begin_of_text|>"], v.ids["<|eot_id|>"]
	}

	var score float32
	normal := func(p string) {
		if v.add(p, score, tokNormal) {
			score--
		}
	}
	withPrefixes := func(p string) {
		for i := range p {
			if i > 0 {
				normal(p[:i])
			}
		}
		normal(p)
	}
	normal(spaceMark)
	for c := 'a'; c <= 'z'; c++ {
		normal(string(c))
	}
	for c := 'A'; c <= 'Z'; c++ {
		normal(string(c))
	}
	for c := '0'; c <= '9'; c++ {
		normal(string(c))
	}
	for _, c := range extraChars {
		normal(string(c))
	}
	for c := 'a'; c <= 'z'; c++ {
		normal(spaceMark + string(c))
	}
	for c := 'A'; c <= 'Z'; c++ {
		normal(spaceMark + string(c))
	}
	for c := '0'; c <= '9'; c++ {
		normal(spaceMark + string(c))
	}
	for _, w := range commonWords {
		withPrefixes(spaceMark + w)
	}
	for _, w := range commonWords {
		withPrefixes(w)
	}
	for _, w := range commonWords[:100] {
		withPrefixes(spaceMark + strings.ToUpper(w[:1]) + w[1:])
	}
	for k := 2; !v.full(); k++ {
		for _, mark := range []string{spaceMark, ""} {
			for s := range lowerStrings(k) {
				if v.full() {
					break
				}
				normal(mark + s)
			}
		}
	}
	return v, nil
}

// lowerStrings yields every string of k lowercase letters in alphabetical
// order.
func lowerStrings(k int) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		b := []byte(strings.Repeat("a", k))
		for {
			if !yield(string(b)) {
				return
			}
			i := k - 1
			for ; i >= 0 && b[i] == 'z'; i-- {
				b[i] = 'a'
			}
			if i < 0 {
				return
			}
			b[i]++
		}
	}
}

// Chat templates written to tokenizer.chat_template.
const (
	// chatMLThinkTemplate is a compact Qwen3-style template: ChatML turns,
	// tools listed in the system turn inside <tools></tools>, assistant tool
	// calls as <tool_call> JSON blocks, tool results as <tool_response>
	// blocks in a user turn, reasoning of assistant turns after the last
	// user message kept inside <think></think>, and enable_thinking=false
	// writing an empty think block after the generation prompt.
	chatMLThinkTemplate = `{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- elif messages[0].role == 'system' %}
    {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
{%- endif %}
{%- set ns = namespace(last_user=-1) %}
{%- for message in messages %}
    {%- if message.role == 'user' %}
        {%- set ns.last_user = loop.index0 %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>\n' }}
    {%- elif message.role == 'assistant' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning = message.reasoning_content %}
        {%- else %}
            {%- set reasoning = '' %}
        {%- endif %}
        {%- if '</think>' in content %}
            {%- set reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
            {%- set content = content.split('</think>')[-1].lstrip('\n') %}
        {%- endif %}
        {{- '<|im_start|>assistant\n' }}
        {%- if loop.index0 > ns.last_user and reasoning %}
            {{- '<think>\n' + reasoning.strip('\n') + '\n</think>\n\n' }}
        {%- endif %}
        {{- content }}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' + tool_call.name + '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' + content + '\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}`

	// llama3Template is the chat template of Meta-Llama-3-8B-Instruct.
	llama3Template = `{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}`
)

var templateSources = map[string]string{
	TemplateChatMLThink: chatMLThinkTemplate,
	TemplateLlama3:      llama3Template,
}

// ChatTemplate returns the Jinja chat template that Write stores in
// tokenizer.chat_template for a template name, and whether there is one
// ("" has none).
func ChatTemplate(name string) (string, bool) {
	s, ok := templateSources[name]
	return s, ok
}
