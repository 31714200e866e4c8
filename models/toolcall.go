package models

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/asi1d/asi1d/tokenizer"
)

// ToolFormat is how a model family writes tool calls in its output.
type ToolFormat int

const (
	// ToolFormatNone: no tool-call syntax is known; the output is text.
	ToolFormatNone ToolFormat = iota
	// ToolFormatHermes: Hermes 2 Pro, Qwen 2.5 and Qwen 3 write each call as
	// <tool_call>\n{"name": N, "arguments": {...}}\n</tool_call>, possibly
	// several, possibly after some text.
	ToolFormatHermes
	// ToolFormatLlama3: Llama 3.1, 3.2 and 3.3 answer with nothing but a JSON
	// object {"name": N, "parameters": {...}} ("arguments" is accepted too),
	// optionally preceded by <|python_tag|>; several are separated by ";" or
	// newlines.
	ToolFormatLlama3
	// ToolFormatMistral: Mistral v0.3 writes [TOOL_CALLS] [{"name": N,
	// "arguments": {...}}, ...]; newer Mistral models write
	// [TOOL_CALLS]N[ARGS]{...}, once per call.
	ToolFormatMistral
)

// String returns "none", "hermes", "llama3" or "mistral".
func (f ToolFormat) String() string {
	switch f {
	case ToolFormatNone:
		return "none"
	case ToolFormatHermes:
		return "hermes"
	case ToolFormatLlama3:
		return "llama3"
	case ToolFormatMistral:
		return "mistral"
	}
	return fmt.Sprintf("ToolFormat(%d)", int(f))
}

// The markers of the tool-call formats.
const (
	hermesOpen     = "<tool_call>"
	hermesClose    = "</tool_call>"
	llamaPythonTag = "<|python_tag|>"
	mistralCalls   = "[TOOL_CALLS]"
	mistralArgs    = "[ARGS]"
)

// toolSpace is the whitespace skipped around calls and dropped between them:
// JSON's insignificant whitespace.
const toolSpace = " \t\n\r"

// maxToolNameLen bounds the function name of Mistral's [TOOL_CALLS]N[ARGS]
// form: a longer run of name characters is not a call.
const maxToolNameLen = 256

// DetectToolFormat decides from a model's chat template and special tokens
// (text of each special or control token -> true), not from a list of model
// names, how the model writes tool calls. The template decides first: one
// mentioning [TOOL_CALLS] is Mistral; <tool_call> is Hermes; <|python_tag|>,
// or Llama 3 headers (<|start_header_id|>) together with the ipython role or
// the "parameters" JSON instructions, is Llama3. Otherwise a special token
// [TOOL_CALLS], <tool_call> or <|python_tag|> decides, in that order, and
// without any of them the format is ToolFormatNone.
func DetectToolFormat(template string, specialTokens map[string]bool) ToolFormat {
	switch {
	case strings.Contains(template, mistralCalls):
		return ToolFormatMistral
	case strings.Contains(template, hermesOpen):
		return ToolFormatHermes
	case strings.Contains(template, llamaPythonTag),
		strings.Contains(template, "<|start_header_id|>") &&
			(strings.Contains(template, "ipython") || strings.Contains(template, `"parameters"`)):
		return ToolFormatLlama3
	case specialTokens[mistralCalls]:
		return ToolFormatMistral
	case specialTokens[hermesOpen]:
		return ToolFormatHermes
	case specialTokens[llamaPythonTag]:
		return ToolFormatLlama3
	}
	return ToolFormatNone
}

// ToolCallDelta is one streamed piece of a tool call, as OpenAI's
// delta.tool_calls[i].
type ToolCallDelta struct {
	Index     int    // 0-based index of the call within this answer
	ID        string // set only on the first delta of a call
	Name      string // set only on the first delta of a call
	Arguments string // a fragment of the arguments JSON text (may be "")
}

// ToolChunk is one output item of a ToolCallParser: content text when Call
// is nil (Content is then not empty), otherwise a tool-call delta.
type ToolChunk struct {
	Content string
	Call    *ToolCallDelta
}

// ToolCallParser finds the tool calls in the streamed content of one answer
// and passes the rest through as content.
//
// A call is the text of a region of the output, in the syntax of the format
// (see ToolFormat):
//
//   - Hermes: <tool_call> ws JSON-object ws </tool_call>, anywhere in the
//     answer.
//   - Llama3: [<|python_tag|> ws] JSON-object at the start of the answer
//     (after whitespace). Right after an accepted call, another may follow,
//     separated by whitespace and at most one ";". Once the answer has other
//     text, nothing more is a call.
//   - Mistral: [TOOL_CALLS] ws followed by a JSON array of call objects (one
//     region holding several calls) or by N[ARGS] ws JSON-object, where the
//     name N is made of ASCII letters, digits, "_", "-" and ".". Anywhere in
//     the answer.
//
// A call object is a JSON object whose "name" is a non-empty string (one of
// names, when names is not nil) and whose "arguments" (for Llama3,
// "parameters" first) is a JSON object, a JSON string holding a JSON object,
// null or absent (both meaning {}); other keys are ignored. A region is
// accepted as soon as it is complete and all its calls are valid; a
// Mistral array with no element is not a call. Each accepted call is
// emitted as two deltas: {Index, ID, Name} and then {Index, Arguments}, the
// arguments compacted with json.Compact. Arguments are not streamed piece by
// piece because a call is only known to be valid once it is complete: a
// malformed call must come out as text, never as a broken call.
//
// Everything else is content, verbatim: text around calls, and call syntax
// that is malformed, rejected (unknown name, bad arguments, trailing text
// inside the tags, ...) or unfinished at Flush. When a region fails, its
// marker (<tool_call> or [TOOL_CALLS] with the whitespace before it) becomes
// content and parsing goes on right after the marker, so a valid call written
// after a broken one is still found; for Llama3, the whole answer from the
// failed region on is content. With parallel false, only the first accepted
// call is a call: the text after it is content, including the rest of a
// Mistral array after its first element. The one exception to verbatim
// content: a run of content that is whitespace only and borders an accepted
// call (at the answer start, between calls, or at the end after the last
// call) is dropped, so an answer that only calls tools has no content.
//
// Invariant: writing the Content chunks in order, and in place of each call's
// first delta the raw text of its region (including dropped whitespace; the
// region of a Mistral array is written at its first call) gives back the
// whole output, byte for byte.
//
// Streaming: content is released as soon as it cannot belong to a call.
// Held back are a tail that may begin a marker (such as "<tool" for Hermes or
// "[" for Mistral), an incomplete UTF-8 character at the end, whitespace
// that would be dropped if a call or the end followed, and a region until it
// is complete or fails (the JSON is checked as it streams, so a region fails
// at its first impossible byte). The result does not depend on how the
// output is split into Push calls, except for how content is cut into chunks;
// adjacent content within one Push or Flush result is merged.
//
// A ToolCallParser belongs to one answer and is not safe for concurrent use.
type ToolCallParser struct {
	format   ToolFormat
	names    map[string]bool
	parallel bool
	newID    func() string

	held []byte // output not yet decided; a region in progress starts at held[0]
	// edge is set at the answer start and right after an accepted call:
	// leading whitespace is held, to be dropped if a call or the end follows.
	edge   bool
	noMore bool        // parallel is false and a call was accepted
	cut    bool        // ended by Cut: an unfinished region is dropped
	reg    *toolRegion // region being scanned, or nil
	calls  []ToolCall
	// raw[i] is the raw text of the region of call i (with the whitespace
	// dropped around it), or "" for later calls of the same region.
	raw []string
}

// NewToolCallParser returns a parser for one answer. names, when non-nil, is
// the set of declared function names: a call to another name is not a call
// (its text stays content). With parallel false, only the first call is a
// call and later call syntax stays content. newID returns a fresh call id;
// when nil, ids are "call_" and 24 random capital letters and digits. With
// ToolFormatNone (or an unknown format) every Push returns its text as one
// content chunk and nothing is held back.
func NewToolCallParser(f ToolFormat, names map[string]bool, parallel bool, newID func() string) *ToolCallParser {
	if newID == nil {
		newID = randomCallID
	}
	p := &ToolCallParser{format: f, names: names, parallel: parallel, newID: newID}
	p.edge = p.enabled()
	return p
}

func (p *ToolCallParser) enabled() bool {
	return p.format == ToolFormatHermes || p.format == ToolFormatLlama3 || p.format == ToolFormatMistral
}

// randomCallID returns "call_" and 24 random characters (A-Z, 2-7).
func randomCallID() string {
	return "call_" + rand.Text()[:24]
}

// Push consumes the next piece of the answer's content text (reasoning is
// split off before) and returns the chunks ready to emit, in order (nil
// when none).
func (p *ToolCallParser) Push(text string) []ToolChunk {
	if !p.enabled() {
		if text == "" {
			return nil
		}
		return []ToolChunk{{Content: text}}
	}
	p.held = append(p.held, text...)
	return p.run(nil, false)
}

// Flush ends the answer: an unfinished region fails and everything held is
// released. Call it once, after the last Push (or call Cut instead).
func (p *ToolCallParser) Flush() []ToolChunk {
	if !p.enabled() {
		return nil
	}
	return p.run(nil, true)
}

// Cut ends an answer that was cut short (max_tokens, the end of the
// context) instead of Flush: like Flush, except that a region still
// unfinished at the cut is dropped, all of it, rather than released as
// content. A call cut short is neither a call (its JSON is incomplete) nor
// answer text (it is call markup). For Mistral's array form the region is
// the whole array, complete elements included. Everything before the
// region, a partial marker that never completed, and a region that already
// failed come out as Flush would give them. The Invariant above then holds
// for the output without the dropped region. Call it once, after the last
// Push.
func (p *ToolCallParser) Cut() []ToolChunk {
	if !p.enabled() {
		return nil
	}
	p.cut = true
	return p.run(nil, true)
}

// Calls returns the calls accepted so far, in index order (after Flush, all
// of them), or nil when there are none.
func (p *ToolCallParser) Calls() []ToolCall {
	return slices.Clone(p.calls)
}

// run decides as much of p.held as it can, appending chunks to out. With
// final, nothing more will come, so everything is decided.
func (p *ToolCallParser) run(out []ToolChunk, final bool) []ToolChunk {
	for {
		if p.reg != nil {
			st := p.advance()
			if st == regionMore && final {
				if p.cut { // a call cut short: dropped (see Cut)
					p.reg, p.edge = nil, false
					p.consume(len(p.held))
					return out
				}
				st = regionFail
			}
			switch st {
			case regionMore:
				return out
			case regionAccept:
				out = p.accept(out)
			case regionFail:
				end := p.reg.markerEnd
				p.reg, p.edge = nil, false
				out = p.content(out, p.held[:end])
				p.consume(end)
			}
			continue
		}
		if p.edge {
			k := len(p.held) - len(bytes.TrimLeft(p.held, toolSpace))
			if k == len(p.held) { // whitespace only, so far
				if !final {
					return out
				}
				if n := len(p.raw); n > 0 {
					p.raw[n-1] += string(p.held) // trailing whitespace after the last call
				} else {
					out = p.content(out, p.held)
				}
				p.consume(len(p.held))
				return out
			}
			switch p.regionAt(k) {
			case startYes:
				continue
			case startMaybe:
				if !final {
					return out
				}
			}
			p.edge = false
		}
		marker := p.marker()
		if marker == "" { // no call can start in content
			n := len(p.held)
			if !final {
				n -= tokenizer.IncompleteUTF8Tail(string(p.held[max(0, n-3):]))
			}
			out = p.content(out, p.held[:n])
			p.consume(n)
			return out
		}
		if i := bytes.Index(p.held, []byte(marker)); i >= 0 {
			out = p.content(out, p.held[:i])
			p.consume(i)
			p.reg = p.newRegion(len(marker), len(marker))
			continue
		}
		n := len(p.held)
		if !final {
			n = partialMarkerStart(p.held, marker)
			n -= tokenizer.IncompleteUTF8Tail(string(p.held[max(0, n-3):n]))
		}
		out = p.content(out, p.held[:n])
		p.consume(n)
		return out
	}
}

// marker returns the marker that starts a region inside content, or "" when
// no call can start there (Llama3 calls only start at an edge).
func (p *ToolCallParser) marker() string {
	if p.noMore {
		return ""
	}
	switch p.format {
	case ToolFormatHermes:
		return hermesOpen
	case ToolFormatMistral:
		return mistralCalls
	}
	return ""
}

type regionStart int

const (
	startNo    regionStart = iota
	startYes               // p.reg is set
	startMaybe             // the text at k may still become a region start
)

// regionAt starts a region at held[0], at an edge where held[:k] is
// whitespace and held[k] is not, if a call may start at k.
func (p *ToolCallParser) regionAt(k int) regionStart {
	if p.noMore {
		return startNo
	}
	rest := p.held[k:]
	if marker := p.marker(); marker != "" {
		switch {
		case bytes.HasPrefix(rest, []byte(marker)):
			p.reg = p.newRegion(k+len(marker), k+len(marker))
			return startYes
		case len(rest) < len(marker) && strings.HasPrefix(marker, string(rest)):
			return startMaybe
		}
		return startNo
	}
	// Llama3.
	switch {
	case rest[0] == '{' || (rest[0] == ';' && len(p.calls) > 0) || bytes.HasPrefix(rest, []byte(llamaPythonTag)):
		p.reg = p.newRegion(k, 0)
		return startYes
	case len(rest) < len(llamaPythonTag) && strings.HasPrefix(llamaPythonTag, string(rest)):
		return startMaybe
	}
	return startNo
}

// partialMarkerStart returns where the longest suffix of b that is a proper
// prefix of marker starts, or len(b) if there is none.
func partialMarkerStart(b []byte, marker string) int {
	for q := max(0, len(b)-len(marker)+1); q < len(b); q++ {
		if strings.HasPrefix(marker, string(b[q:])) {
			return q
		}
	}
	return len(b)
}

// content appends s as content, merged into a content chunk ending out.
func (p *ToolCallParser) content(out []ToolChunk, s []byte) []ToolChunk {
	if len(s) == 0 {
		return out
	}
	if n := len(out); n > 0 && out[n-1].Call == nil {
		out[n-1].Content += string(s)
		return out
	}
	return append(out, ToolChunk{Content: string(s)})
}

// consume drops held[:n], keeping the rest at the start of the buffer.
func (p *ToolCallParser) consume(n int) {
	p.held = p.held[:copy(p.held, p.held[n:])]
}

// accept emits the calls of the complete region p.reg and drops its text.
func (p *ToolCallParser) accept(out []ToolChunk) []ToolChunk {
	r := p.reg
	raw := string(p.held[:r.end])
	for i, c := range r.calls {
		c.ID = p.newID()
		idx := len(p.calls)
		p.calls = append(p.calls, c)
		if i > 0 {
			raw = ""
		}
		p.raw = append(p.raw, raw)
		out = append(out,
			ToolChunk{Call: &ToolCallDelta{Index: idx, ID: c.ID, Name: c.Name}},
			ToolChunk{Call: &ToolCallDelta{Index: idx, Arguments: c.Arguments}})
	}
	p.consume(r.end)
	p.reg, p.edge = nil, true
	p.noMore = !p.parallel
	return out
}

type regionStatus int

const (
	regionMore   regionStatus = iota // needs more text
	regionAccept                     // complete and valid: held[:reg.end] holds reg.calls
	regionFail                       // not a valid call
)

type regionPhase int

const (
	phLit               regionPhase = iota // matching reg.lit, then reg.next
	phHermesBeforeJSON                     // after <tool_call>: ws, then "{"
	phHermesJSON                           // the call object
	phHermesAfterJSON                      // ws, then </tool_call>
	phLlamaStart                           // ";", <|python_tag|> or "{"
	phLlamaAfterSemi                       // ws, then <|python_tag|> or "{"
	phLlamaAfterTag                        // ws, then "{"
	phLlamaJSON                            // the call object
	phMistralStart                         // after [TOOL_CALLS]: ws, then "[" or a name
	phMistralArray                         // the array of call objects
	phMistralName                          // name characters, then [ARGS]
	phMistralBeforeArgs                    // ws, then "{"
	phMistralArgs                          // the arguments object
	phDone                                 // accepted once the literal is matched
)

// toolRegion is the state of a region being scanned; it starts at held[0].
type toolRegion struct {
	markerEnd int // on failure, held[:markerEnd] is content and parsing resumes there
	pos       int // held[:pos] is scanned
	phase     regionPhase
	lit       string      // phLit: the literal
	litPos    int         // phLit: bytes of lit matched
	next      regionPhase // phLit: the phase after the literal
	json      jsonScanner
	jsonStart int // start of the JSON value in held
	nameStart int // Mistral: the name is held[nameStart:nameEnd]
	nameEnd   int
	calls     []ToolCall // validated calls, without IDs
	end       int        // accepted: the region is held[:end]
}

// newRegion returns the region starting at held[0] whose scan starts at pos
// (after its marker, if any).
func (p *ToolCallParser) newRegion(pos, markerEnd int) *toolRegion {
	r := &toolRegion{pos: pos, markerEnd: markerEnd}
	switch p.format {
	case ToolFormatHermes:
		r.phase = phHermesBeforeJSON
	case ToolFormatLlama3:
		r.phase = phLlamaStart
	case ToolFormatMistral:
		r.phase = phMistralStart
	}
	return r
}

// advance scans the region p.reg over the held text not scanned yet.
func (p *ToolCallParser) advance() regionStatus {
	r := p.reg
	for r.pos < len(p.held) {
		c := p.held[r.pos]
		space := strings.IndexByte(toolSpace, c) >= 0
		switch r.phase {
		case phLit:
			if c != r.lit[r.litPos] {
				return regionFail
			}
			r.pos++
			if r.litPos++; r.litPos == len(r.lit) {
				r.phase = r.next
				if r.phase == phDone {
					r.end = r.pos
					return regionAccept
				}
			}
			continue
		case phHermesBeforeJSON, phLlamaAfterSemi, phLlamaAfterTag, phMistralBeforeArgs, phHermesAfterJSON, phMistralStart:
			if space {
				r.pos++
				continue
			}
		}
		switch r.phase {
		case phHermesBeforeJSON, phLlamaAfterTag, phMistralBeforeArgs:
			if c != '{' {
				return regionFail
			}
			switch r.phase {
			case phHermesBeforeJSON:
				r.startJSON(phHermesJSON)
			case phLlamaAfterTag:
				r.startJSON(phLlamaJSON)
			default:
				r.startJSON(phMistralArgs)
			}
		case phLlamaStart, phLlamaAfterSemi:
			switch {
			case c == ';' && r.phase == phLlamaStart:
				r.pos++
				r.phase = phLlamaAfterSemi
			case c == '<':
				r.startLit(llamaPythonTag, phLlamaAfterTag)
			case c == '{':
				r.startJSON(phLlamaJSON)
			default:
				return regionFail
			}
		case phHermesAfterJSON:
			r.startLit(hermesClose, phDone)
		case phMistralStart:
			switch {
			case c == '[':
				r.startJSON(phMistralArray)
			case isToolNameByte(c):
				r.nameStart = r.pos
				r.phase = phMistralName
			default:
				return regionFail
			}
		case phMistralName:
			switch {
			case isToolNameByte(c) && r.pos-r.nameStart < maxToolNameLen:
				r.pos++
			case c == '[':
				r.nameEnd = r.pos
				r.startLit(mistralArgs, phMistralBeforeArgs)
			default:
				return regionFail
			}
		case phHermesJSON, phLlamaJSON, phMistralArray, phMistralArgs:
			if !r.json.step(c) {
				return regionFail
			}
			r.pos++
			if !r.json.done {
				continue
			}
			if !p.validate() {
				return regionFail
			}
			if r.phase == phHermesJSON {
				r.phase = phHermesAfterJSON
				continue
			}
			if r.end == 0 {
				r.end = r.pos
			}
			return regionAccept
		}
	}
	return regionMore
}

// startLit makes the region match lit from its current byte, then go to next.
func (r *toolRegion) startLit(lit string, next regionPhase) {
	r.phase, r.lit, r.litPos, r.next = phLit, lit, 0, next
}

// startJSON makes the region scan a JSON value from its current byte in the
// given phase.
func (r *toolRegion) startJSON(phase regionPhase) {
	r.phase, r.jsonStart, r.json = phase, r.pos, jsonScanner{}
}

func isToolNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.'
}

// validate checks the complete JSON value of the region, held[jsonStart:pos],
// and sets reg.calls (and reg.end when the region ends before the value).
func (p *ToolCallParser) validate() bool {
	r := p.reg
	js := p.held[r.jsonStart:r.pos]
	switch r.phase {
	case phMistralArgs:
		name := string(p.held[r.nameStart:r.nameEnd])
		args, ok := compactToolArgs(js, true)
		if !ok || !p.nameOK(name) {
			return false
		}
		r.calls = []ToolCall{{Name: name, Arguments: args}}
		return true
	case phMistralArray:
		return p.validateArray(js)
	}
	c, ok := p.callFromJSON(js)
	r.calls = []ToolCall{c}
	return ok
}

// validateArray checks a Mistral array of calls. With parallel false only
// its first element counts, and the region ends after it unless the array
// ends there.
func (p *ToolCallParser) validateArray(arr []byte) bool {
	r := p.reg
	dec := json.NewDecoder(bytes.NewReader(arr))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return false
	}
	r.calls = nil
	for dec.More() {
		var el json.RawMessage
		if dec.Decode(&el) != nil {
			return false
		}
		c, ok := p.callFromJSON(el)
		if !ok {
			return false
		}
		r.calls = append(r.calls, c)
		if !p.parallel {
			end := int(dec.InputOffset())
			if !bytes.Equal(bytes.TrimLeft(arr[end:], toolSpace), []byte("]")) {
				r.end = r.jsonStart + end // the rest of the array is content
			}
			return true
		}
	}
	return len(r.calls) > 0
}

// callFromJSON validates obj, the JSON text of one call object.
func (p *ToolCallParser) callFromJSON(obj []byte) (ToolCall, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil || m == nil {
		return ToolCall{}, false
	}
	var name string
	if raw, ok := m["name"]; !ok || json.Unmarshal(raw, &name) != nil || !p.nameOK(name) {
		return ToolCall{}, false
	}
	args, present := m["arguments"]
	if p.format == ToolFormatLlama3 {
		if a, ok := m["parameters"]; ok {
			args, present = a, true
		}
	}
	if !present {
		return ToolCall{Name: name, Arguments: "{}"}, true
	}
	s, ok := compactToolArgs(args, false)
	return ToolCall{Name: name, Arguments: s}, ok
}

func (p *ToolCallParser) nameOK(name string) bool {
	return name != "" && (p.names == nil || p.names[name])
}
