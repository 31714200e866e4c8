package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asi1d/asi1d/engine"
)

// Embeddings share the loop with chat. Embed queues a job on a bounded
// channel of its own (MaxQueue jobs, refused with ErrQueueFull beyond, like
// Submit); the loop takes the queued inputs FIFO into passes of the
// backend's Embedder (engine.EmbedLimits: NSeq inputs and NBatch tokens at
// most) and runs at most one pass per loop iteration, after the chat step.
// So a flood of embeddings delays each chat step by one pass and never
// stops it, and running streams never stop the embeddings: the two
// alternate. While chat sequences run, a pass carries at most the step's
// token budget (at least one input), so that it costs the streams about
// what a prompt chunk would; an idle loop fills a pass to NBatch.

// ErrNoEmbeddings is returned by Embed when the backend cannot embed.
var ErrNoEmbeddings = engine.ErrNoEmbeddings

// InputError is an input Embed refuses: empty or longer than the
// backend's MaxTokens.
type InputError struct {
	Index, Tokens, Max int
}

func (e *InputError) Error() string {
	if e.Tokens == 0 {
		return fmt.Sprintf("embedding input %d is empty", e.Index)
	}
	return fmt.Sprintf("embedding input %d has %d tokens, more than the %d this model embeds at once", e.Index, e.Tokens, e.Max)
}

// embedJob is one Embed call. The loop owns it until done is closed; then
// out or err is the result.
type embedJob struct {
	ctx    context.Context
	inputs [][]engine.Token
	out    [][]float32
	next   int // inputs handed to a pass so far
	filled int // vectors received
	err    error
	done   chan struct{}
}

func (j *embedJob) end(err error) {
	j.err = err
	close(j.done)
}

// initEmbed sets up the embeddings queue in New.
func (s *Scheduler) initEmbed() {
	s.embedIn = make(chan *embedJob, s.opts.MaxQueue)
	if e, ok := s.be.(engine.Embedder); ok {
		s.emb = e
		s.embLimits, s.embErr = e.EmbedLimits()
	} else {
		s.embErr = ErrNoEmbeddings
	}
}

// EmbedLimits are the backend's embedding limits, or why it has none.
func (s *Scheduler) EmbedLimits() (engine.EmbedLimits, error) { return s.embLimits, s.embErr }

// Embed computes one pooled, not normalised, vector per input on the loop.
// It blocks until the vectors are ready or ctx ends; a full queue returns
// ErrQueueFull at once, a draining scheduler ErrDraining, an input out of
// the limits an *InputError.
func (s *Scheduler) Embed(ctx context.Context, inputs [][]engine.Token) ([][]float32, error) {
	if s.embErr != nil {
		return nil, s.embErr
	}
	if len(inputs) == 0 {
		return nil, errors.New("scheduler: no embedding inputs")
	}
	for i, in := range inputs {
		if len(in) == 0 || len(in) > s.embLimits.MaxTokens {
			return nil, &InputError{Index: i, Tokens: len(in), Max: s.embLimits.MaxTokens}
		}
	}
	j := &embedJob{ctx: ctx, inputs: inputs, out: make([][]float32, len(inputs)), done: make(chan struct{})}
	if err := s.queueEmbed(j); err != nil {
		return nil, err
	}
	select {
	case <-j.done:
		return j.out, j.err
	case <-ctx.Done():
		return nil, ctx.Err() // the loop drops the job at its next pass
	}
}

func (s *Scheduler) queueEmbed(j *embedJob) error {
	s.subMu.RLock()
	defer s.subMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if s.draining.Load() {
		return ErrDraining
	}
	for {
		n := s.st.embedWaiting.Load()
		if n >= int64(s.opts.MaxQueue) {
			return ErrQueueFull
		}
		if s.st.embedWaiting.CompareAndSwap(n, n+1) {
			break
		}
	}
	s.embedIn <- j // capacity MaxQueue and embedWaiting <= MaxQueue: never blocks
	return nil
}

// finishEmbed ends a queued job and takes it off the count.
func (s *Scheduler) finishEmbed(j *embedJob, err error) {
	s.st.embedWaiting.Add(-1)
	j.end(err)
}

// embedStep runs one pass of queued embedding inputs, FIFO, if any.
func (s *Scheduler) embedStep() {
	q := s.embedQ[:0]
	for _, j := range s.embedQ {
		if err := j.ctx.Err(); err != nil {
			s.finishEmbed(j, err)
			continue
		}
		q = append(q, j)
	}
	clear(s.embedQ[len(q):])
	s.embedQ = q
	if len(q) == 0 {
		return
	}
	l := s.embLimits
	room := l.NBatch
	if s.running > 0 {
		room = min(room, s.budget) // beside running streams: a prompt chunk's worth
	}
	type ref struct {
		j *embedJob
		i int
	}
	var batch [][]engine.Token
	var refs []ref
	tokens := 0
fill:
	for _, j := range q {
		for j.next < len(j.inputs) && len(batch) < l.NSeq {
			in := j.inputs[j.next]
			if len(batch) > 0 && tokens+len(in) > room {
				break fill
			}
			batch, refs = append(batch, in), append(refs, ref{j, j.next})
			tokens += len(in)
			j.next++
		}
		if len(batch) == l.NSeq {
			break
		}
	}
	t0 := time.Now()
	vecs, err := s.emb.Embed(batch)
	s.st.embedPasses.Add(1)
	if err == nil && len(vecs) != len(batch) {
		err = fmt.Errorf("embed: %d vectors for %d inputs", len(vecs), len(batch))
	}
	if err != nil {
		s.log.Error("embeddings pass failed", "inputs", len(batch), "tokens", tokens, "err", err)
		for _, r := range refs {
			if r.j.err == nil && r.j.filled >= 0 {
				r.j.filled = -1 // failed: ended below
			}
		}
	} else {
		s.st.embedInputs.Add(uint64(len(batch)))
		s.st.embedTokens.Add(uint64(tokens))
		for k, r := range refs {
			r.j.out[r.i] = vecs[k]
			r.j.filled++
		}
	}
	s.log.Log(context.Background(), LevelTrace, "embeddings pass", "inputs", len(batch), "tokens", tokens, "dur", time.Since(t0))
	q = s.embedQ[:0]
	for _, j := range s.embedQ {
		switch {
		case j.filled < 0:
			s.finishEmbed(j, fmt.Errorf("embeddings failed: %w", err))
		case j.filled == len(j.inputs):
			s.finishEmbed(j, nil)
		default:
			q = append(q, j)
		}
	}
	clear(s.embedQ[len(q):])
	s.embedQ = q
}

// endEmbeds ends every queued embedding job with err.
func (s *Scheduler) endEmbeds(err error) {
	for _, j := range s.embedQ {
		s.finishEmbed(j, err)
	}
	clear(s.embedQ)
	s.embedQ = s.embedQ[:0]
}
