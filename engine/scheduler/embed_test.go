package scheduler_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/enginetest"
	"github.com/asi1d/asi1d/engine/scheduler"
)

// want is the fake's vector of one input, computed alone.
func want(t *testing.T, in []engine.Token) []float32 {
	t.Helper()
	v, err := enginetest.New(1, 512, 512).Embed([][]engine.Token{in})
	if err != nil {
		t.Fatal(err)
	}
	return v[0]
}

// Many inputs are split into passes of at most NSeq inputs, each vector
// that of its input alone, in order.
func TestEmbedBatchesInOrder(t *testing.T) {
	fake := enginetest.New(2, 256, 64)
	s := harness(t, fake, scheduler.Options{})
	var inputs [][]engine.Token
	for i := range 20 {
		inputs = append(inputs, prompt(fmt.Sprintf("input %d", i)))
	}
	vecs, err := s.Embed(context.Background(), inputs)
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range inputs {
		if !slices.Equal(vecs[i], want(t, in)) {
			t.Errorf("input %d: vector differs from the input's own", i)
		}
	}
	c := fake.Counters()
	if c.Embeds != 3 || c.EmbedInputs != 20 {
		t.Errorf("%d passes of %d inputs, want 3 passes (8+8+4) of 20", c.Embeds, c.EmbedInputs)
	}
	if st := s.Stats(); st.EmbedInputs != 20 || st.EmbedPasses != 3 || st.EmbedWaiting != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestEmbedRefusesBadInputs(t *testing.T) {
	fake := enginetest.New(1, 32, 32)
	s := harness(t, fake, scheduler.Options{})
	var ie *scheduler.InputError
	if _, err := s.Embed(context.Background(), [][]engine.Token{{5}, {}}); !errors.As(err, &ie) || ie.Index != 1 {
		t.Errorf("empty input: %v", err)
	}
	if _, err := s.Embed(context.Background(), [][]engine.Token{make([]engine.Token, 33)}); !errors.As(err, &ie) || ie.Max != 32 {
		t.Errorf("long input: %v", err)
	}
	if _, err := s.Embed(context.Background(), nil); err == nil {
		t.Error("no inputs: want an error")
	}
	fake.FailEmbed = func([][]engine.Token) error { return errors.New("boom") }
	if _, err := s.Embed(context.Background(), [][]engine.Token{{5}}); err == nil {
		t.Error("a failed pass: want an error")
	}
	fake.FailEmbed = nil
	if _, err := s.Embed(context.Background(), [][]engine.Token{{5}}); err != nil {
		t.Errorf("after a failed pass: %v", err)
	}
}

// gate makes the fake's first Embed wait until released, and says when it
// has started.
func gate(fake *enginetest.Fake) (started, release chan struct{}) {
	started, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	fake.FailEmbed = func([][]engine.Token) error {
		once.Do(func() { close(started); <-release })
		return nil
	}
	return started, release
}

// A flood of embeddings queued ahead of a chat request does not hold it
// back: once the chat runs, the loop alternates one chat step and one
// embeddings pass, and the chat finishes while most of the flood waits.
func TestChatFlowsUnderEmbeddingsFlood(t *testing.T) {
	fake := enginetest.New(2, 256, 64)
	s := harness(t, fake, scheduler.Options{})
	started, release := gate(fake)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const jobs, per = 4, 800
	var wg sync.WaitGroup
	for range jobs {
		wg.Go(func() {
			inputs := make([][]engine.Token, per)
			for i := range inputs {
				inputs[i] = prompt("flood")
			}
			// Cancelled below, or done if the loop ran the rest of the
			// flood before the cancel: either is right.
			if _, err := s.Embed(ctx, inputs); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("flood: %v", err)
			}
		})
	}
	<-started // the loop is inside the first pass
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().EmbedWaiting < jobs && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	st, err := s.Submit(context.Background(), scheduler.Request{Prompt: prompt("hello"), MaxTokens: 40})
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	r := collect(t, context.Background(), st)
	c := fake.Counters()
	if r.final.Usage.CompletionTokens != 40 {
		t.Fatalf("chat: %+v", r.final)
	}
	first, last := bytes.IndexByte(c.Passes, 'D'), bytes.LastIndexByte(c.Passes, 'D')
	if total, ran := jobs*per/enginetest.EmbedSeqs, bytes.Count(c.Passes[:last], []byte("E")); ran >= total {
		t.Errorf("the whole flood (%d passes) ran before the chat finished", ran)
	}
	span := c.Passes[first : last+1]
	if bytes.Contains(span, []byte("DD")) || bytes.Contains(span, []byte("EE")) {
		t.Errorf("passes while the chat ran do not alternate: %s", span)
	}
	if n := bytes.Count(span, []byte("D")); n < 40 {
		t.Errorf("%d chat decodes, want at least 40", n)
	}
	cancel()
	wg.Wait()
	for s.Stats().EmbedWaiting > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if w := s.Stats().EmbedWaiting; w != 0 {
		t.Errorf("%d cancelled embedding jobs still counted", w)
	}
}

// Running chat streams do not hold embeddings back: an embeddings request
// finishes after a few passes while the streams still have most of their
// tokens to go.
func TestEmbeddingsFlowUnderChat(t *testing.T) {
	fake := enginetest.New(2, 512, 64)
	s := harness(t, fake, scheduler.Options{})
	// The loop waits inside a decode of both streams until the
	// embeddings are queued.
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fake.FailDecode = func(b []engine.BatchEntry) error {
		if len(b) == 2 && b[0].Logits && b[1].Logits { // both generating
			once.Do(func() { close(started); <-release })
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var streams []*scheduler.Stream
	for i := range 2 {
		st, err := s.Submit(ctx, scheduler.Request{Prompt: prompt(fmt.Sprintf("story %d", i)), MaxTokens: 400})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, st)
	}
	<-started
	var inputs [][]engine.Token
	for i := range 40 {
		inputs = append(inputs, prompt(fmt.Sprintf("doc %d", i)))
	}
	var vecs [][]float32
	var err error
	done := make(chan struct{})
	go func() { defer close(done); vecs, err = s.Embed(context.Background(), inputs) }()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().EmbedWaiting < 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) != 40 || !slices.Equal(vecs[7], want(t, inputs[7])) {
		t.Fatalf("%d vectors", len(vecs))
	}
	c := fake.Counters()
	first, last := bytes.IndexByte(c.Passes, 'E'), bytes.LastIndexByte(c.Passes, 'E')
	if d := bytes.Count(c.Passes[:last], []byte("D")); d >= 400 {
		t.Errorf("the chat streams finished (%d decodes) before the embeddings", d)
	}
	span := c.Passes[first : last+1]
	if bytes.Contains(span, []byte("DD")) || bytes.Contains(span, []byte("EE")) {
		t.Errorf("passes while the embeddings ran do not alternate: %s", span)
	}
	cancel()
	for _, st := range streams {
		collect(t, context.Background(), st)
	}
}
