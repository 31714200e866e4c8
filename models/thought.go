package models

import (
	"strings"

	"github.com/asi1d/asi1d/tokenizer"
)

// ThoughtTags are the markers a reasoning model writes around its thinking,
// for example {"<think>", "</think>"} for DeepSeek-R1, Qwen3 and QwQ. The zero
// value (Open == "") means the model does not reason.
type ThoughtTags struct{ Open, Close string }

// Fragment is a piece of model output ready to emit: reasoning when Thought is
// true, answer content otherwise. Text is never empty and never contains a
// complete Open or Close tag.
type Fragment struct {
	Thought bool
	Text    string
	// Block is, for Thought fragments, the index of their reasoning block in
	// ThoughtParser.Thoughts; 0 for content.
	Block int
}

// thoughtSpace is the whitespace trimmed around reasoning blocks and after a
// close tag: the ASCII space characters (C isspace), as llama.cpp trims.
// Unicode spaces such as U+00A0 are kept as text.
const thoughtSpace = " \t\n\v\f\r"

// ThoughtParser splits streamed model output into reasoning and content, per
// the API contract (shared/ASI1-API.md 5.1):
//
//   - Text between Open and Close is reasoning, text outside is content. Each
//     Open starts a new block. With startInThought (the chat template already
//     opened the block in the generation prompt) the output starts inside a
//     block. A block still open at the end is reasoning.
//   - Tags never appear in a Fragment. A tag that makes no sense where it
//     stands is dropped: a Close in content (for example when the template
//     opened the block but startInThought was not set) and an Open inside a
//     block (the model repeating the tag the template wrote); blocks do not
//     nest. When an Open and a Close occurrence overlap, the one starting first
//     wins; at the same start, the tag expected in the current state wins.
//   - Reasoning blocks are trimmed of surrounding ASCII whitespace (see
//     thoughtSpace) while streaming: leading whitespace is dropped and trailing
//     whitespace is held until more text follows inside the block, so the
//     concatenated Thought fragments of block i equal Thoughts()[i]. A block
//     that is empty after trimming emits nothing and gets no index.
//   - Content keeps its text unchanged, except that whitespace right after a
//     close tag is dropped (Qwen3 writes "</think>\n\n" before the answer), as
//     llama.cpp does; this also applies after a dropped stray Close.
//
// Streaming: Push never emits part of a tag; a tail that could still become a
// tag is held back, and so is an incomplete UTF-8 character at the end of the
// text. The result does not depend on how the output is split into Push
// calls. If Push is given valid UTF-8 and the tags are valid UTF-8, every
// fragment is valid UTF-8. Consecutive fragments of the same kind are not
// merged across a tag, so each fragment is a substring of the output between
// two tags.
//
// To build the contract's reasoning_content from the stream, join blocks with
// "\n\n": write "\n\n" before the first fragment of each block with Block > 0.
//
// A ThoughtParser belongs to one request and is not safe for concurrent use.
type ThoughtParser struct {
	tags      ThoughtTags
	enabled   bool
	inThought bool
	held      string // raw output not yet decided (a possible tag start)
	// afterClose: in content, right after a close tag; whitespace is dropped
	// until other text comes.
	afterClose bool
	// curBlock is the index of the open block in blocks, or -1 while the open
	// block has no non-whitespace text yet (or in content).
	curBlock  int
	pendingWS []byte // whitespace inside the open block, emitted only if text follows
	blocks    []*strings.Builder
	// constrained: outside a block, no tag is read any more (Constrain).
	constrained bool
}

// Constrain makes the output, from the first point outside a reasoning
// block on (at once, unless the parser starts in a thought, else after its
// Close), content in which no tag is read: the answer of a grammar that
// makes it JSON (response_format, forced tool calls), whose strings may
// spell a tag as text. Call it before the first Push. Not safe for
// concurrent use.
func (p *ThoughtParser) Constrain() { p.constrained = true }

// NewThoughtParser returns a parser for one response. With tags.Open or
// tags.Close empty, reasoning is not parsed: every Push returns its text as
// one content fragment with nothing held back, startInThought is ignored and
// Thoughts returns nil. Open may equal Close (a toggle tag).
func NewThoughtParser(tags ThoughtTags, startInThought bool) *ThoughtParser {
	p := &ThoughtParser{tags: tags, curBlock: -1}
	p.enabled = tags.Open != "" && tags.Close != ""
	p.inThought = p.enabled && startInThought
	return p
}

// Push consumes the next fragment of output text and returns the fragments
// ready to emit, in order (nil when none). Fragments are never empty. Not
// safe for concurrent use.
func (p *ThoughtParser) Push(text string) []Fragment {
	if !p.enabled {
		if text == "" {
			return nil
		}
		return []Fragment{{Text: text}}
	}
	buf := p.held + text
	p.held = ""
	return p.run(nil, buf, false)
}

// Flush ends the output: held text is released (a partial tag that never
// completed is ordinary text of the current kind) and trailing whitespace of
// an unclosed block is dropped. Call it once, after the last Push. Not safe
// for concurrent use.
func (p *ThoughtParser) Flush() []Fragment {
	if !p.enabled {
		return nil
	}
	buf := p.held
	p.held = ""
	out := p.run(nil, buf, true)
	p.pendingWS = p.pendingWS[:0]
	return out
}

// Thoughts returns the reasoning blocks seen so far, in order: each trimmed
// of surrounding ASCII whitespace, empty ones dropped (nil when there are
// none). Block i is the concatenation of the Thought fragments with Block i.
// After Flush it is the contract's thought array. Not safe for concurrent use.
func (p *ThoughtParser) Thoughts() []string {
	if len(p.blocks) == 0 {
		return nil
	}
	res := make([]string, len(p.blocks))
	for i, b := range p.blocks {
		res[i] = b.String()
	}
	return res
}

// run processes buf, appending fragments to out. With final, nothing more
// will come, so every tail is decided.
func (p *ThoughtParser) run(out []Fragment, buf string, final bool) []Fragment {
	for {
		if p.constrained && !p.inThought {
			return p.text(out, buf)
		}
		// The tag that the current state expects comes first: it wins ties.
		tags := [2]string{p.tags.Open, p.tags.Close}
		if p.inThought {
			tags = [2]string{p.tags.Close, p.tags.Open}
		}
		at, which, hold := nextThoughtTag(buf, tags, final)
		if at < 0 {
			if !final {
				hold -= tokenizer.IncompleteUTF8Tail(buf[:hold])
			}
			out = p.text(out, buf[:hold])
			p.held = strings.Clone(buf[hold:])
			return out
		}
		out = p.text(out, buf[:at])
		buf = buf[at+len(tags[which]):]
		switch {
		case which == 0 && !p.inThought: // open: a new block
			p.inThought, p.afterClose, p.curBlock = true, false, -1
			p.pendingWS = p.pendingWS[:0]
		case which == 0: // close: trailing whitespace of the block is dropped
			p.inThought, p.afterClose, p.curBlock = false, true, -1
			p.pendingWS = p.pendingWS[:0]
		case !p.inThought: // stray close in content: dropped
			p.afterClose = true
		default: // stray open inside a block: dropped
		}
	}
}

// nextThoughtTag finds the tag occurrence to act on in buf: the one starting first,
// tags[0] winning ties. It returns its start and index, or at = -1 and the
// position from which buf must be held back because a tag may still start
// there (len(buf) if none). Without final, a complete occurrence is acted on
// only if no tag that would beat it can still complete from a partial match
// at the end of buf; this keeps the result independent of how the output was
// split.
func nextThoughtTag(buf string, tags [2]string, final bool) (at, which, hold int) {
	at = -1
	for i, t := range tags {
		if j := strings.Index(buf, t); j >= 0 && (at < 0 || j < at) {
			at, which = j, i
		}
	}
	if final {
		return at, which, len(buf)
	}
	limit := len(buf) // partial matches at or after limit cannot beat the occurrence
	if at >= 0 {
		limit = at + 1
	}
	maxLen := max(len(tags[0]), len(tags[1]))
	for q := max(0, len(buf)-maxLen+1); q < limit; q++ {
		tail := buf[q:]
		for i, t := range tags {
			if len(tail) < len(t) && t[:len(tail)] == tail && (at < 0 || q < at || i < which) {
				return -1, 0, q
			}
		}
	}
	if at >= 0 {
		return at, which, 0
	}
	return -1, 0, len(buf)
}

// text handles s, a stretch of output without tags, in the current state.
func (p *ThoughtParser) text(out []Fragment, s string) []Fragment {
	if s == "" {
		return out
	}
	if !p.inThought {
		if p.afterClose {
			if s = strings.TrimLeft(s, thoughtSpace); s == "" {
				return out
			}
			p.afterClose = false
		}
		return append(out, Fragment{Text: s})
	}
	if p.curBlock < 0 {
		if s = strings.TrimLeft(s, thoughtSpace); s == "" {
			return out
		}
		p.curBlock = len(p.blocks)
		p.blocks = append(p.blocks, new(strings.Builder))
	}
	core := strings.TrimRight(s, thoughtSpace)
	if core == "" {
		p.pendingWS = append(p.pendingWS, s...)
		return out
	}
	t := core
	if len(p.pendingWS) > 0 {
		t = string(p.pendingWS) + core
	}
	p.pendingWS = append(p.pendingWS[:0], s[len(core):]...)
	p.blocks[p.curBlock].WriteString(t)
	return append(out, Fragment{Thought: true, Text: t, Block: p.curBlock})
}
