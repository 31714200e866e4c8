package scheduler_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/enginetest"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/sampler"
)

// letterGrammar allows the bytes 'a'..'m' and EOS. It fails the test when
// two goroutines use it at once.
type letterGrammar struct {
	t      *testing.T
	inUse  atomic.Bool
	closed atomic.Bool
}

func (g *letterGrammar) enter() func() {
	if !g.inUse.CompareAndSwap(false, true) {
		g.t.Error("a grammar was used by two goroutines at once")
	}
	return func() { g.inUse.Store(false) }
}

func (g *letterGrammar) ok(t engine.Token) bool {
	return t == enginetest.EOS || (t >= enginetest.ByteBase+'a' && t <= enginetest.ByteBase+'m')
}

func (g *letterGrammar) Allows(t engine.Token) bool { defer g.enter()(); return g.ok(t) }

func (g *letterGrammar) AllowsEach(toks []engine.Token, ok []bool) {
	defer g.enter()()
	for i, t := range toks {
		ok[i] = g.ok(t)
	}
}

func (g *letterGrammar) Mask(logits []float32) {
	defer g.enter()()
	for i := range logits {
		if !g.ok(engine.Token(i)) {
			logits[i] = float32(math.Inf(-1))
		}
	}
}

func (g *letterGrammar) Accept(t engine.Token) error {
	defer g.enter()()
	if !g.ok(t) {
		return fmt.Errorf("token %d refused", t)
	}
	return nil
}

func (g *letterGrammar) Close() { g.closed.Store(true) }

// spaceSplitter marks the text before the first space as reasoning.
type spaceSplitter struct{ answer bool }

func (s *spaceSplitter) Push(text string) []scheduler.Fragment {
	if s.answer {
		return []scheduler.Fragment{{Text: text}}
	}
	before, after, found := strings.Cut(text, " ")
	var out []scheduler.Fragment
	if before != "" {
		out = append(out, scheduler.Fragment{Thought: true, Text: before})
	}
	if found {
		s.answer = true
		out = append(out, scheduler.Fragment{Text: " " + after})
	}
	return out
}

func (s *spaceSplitter) Flush() []scheduler.Fragment { return nil }

type outcome struct {
	Text, Thought string
	Finish        scheduler.FinishReason
	Err           string
	Usage         scheduler.Usage
	Logprobs      []scheduler.TokenLogprob
}

// runMix runs a mix of 24 requests (greedy, seeded sampling at a high
// temperature, stop strings, logprobs, a splitter, grammars strict and
// lazy) on 12 sequences and returns what each got.
func runMix(t *testing.T, workers int) ([]outcome, []*letterGrammar) {
	fake := enginetest.New(12, 512, 128)
	s := harness(t, fake, scheduler.Options{SampleWorkers: workers, StepTokens: 48})
	out := make([]outcome, 24)
	grammars := make([]*letterGrammar, 24)
	var wg sync.WaitGroup
	for i := range out {
		r := scheduler.Request{Prompt: prompt(fmt.Sprintf("mix %d %s", i, strings.Repeat("q", i*3))), MaxTokens: 40}
		if i%4 != 0 {
			// The fake's rows are flat enough at this temperature that
			// draws differ from the greedy token most of the time.
			r.Sampling = sampler.Params{Temperature: 30, TopP: 0.95, Seed: uint64(i), HasSeed: true}
		}
		if i%3 == 1 {
			r.Stop = []string{"e", "zz"}
		}
		if i%5 == 2 {
			r.Logprobs, r.TopLogprobs = true, 3
		}
		if i%6 == 3 {
			r.Splitter = &spaceSplitter{}
		}
		switch i % 7 {
		case 4:
			grammars[i] = &letterGrammar{t: t}
			r.Grammar = grammars[i]
		case 5:
			grammars[i] = &letterGrammar{t: t}
			r.Grammar = grammars[i]
			r.GrammarTriggers = []engine.Token{enginetest.ByteBase + 'a', enginetest.ByteBase + 'b'}
		}
		st, err := s.Submit(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			var o outcome
			for {
				ev, err := st.Next(context.Background())
				if err != nil {
					break
				}
				for _, f := range ev.Fragments {
					if f.Thought {
						o.Thought += f.Text
					} else {
						o.Text += f.Text
					}
				}
				o.Logprobs = append(o.Logprobs, ev.Logprobs...)
				if ev.Done {
					o.Finish, o.Usage = ev.Finish, ev.Usage
					// Which cached prefix a request finds depends on
					// when the others arrived, not on how rows are sampled.
					o.Usage.CachedTokens = 0
					if ev.Err != nil {
						o.Err = ev.Err.Error()
					}
				}
			}
			out[i] = o
		})
	}
	wg.Wait()
	return out, grammars
}

// Rows sampled on several goroutines give exactly what the loop alone
// gives, request by request, whatever the settings.
func TestParallelSamplingMatchesSequential(t *testing.T) {
	defer scheduler.SetMinParallelLogits(scheduler.SetMinParallelLogits(0))
	seq, _ := runMix(t, 1)
	par, grammars := runMix(t, 4)
	sampled, distinct := 0, map[string]bool{}
	for i := range seq {
		if !reflect.DeepEqual(seq[i], par[i]) {
			t.Errorf("request %d:\nsequential %+v\nparallel   %+v", i, seq[i], par[i])
		}
		if seq[i].Usage.CompletionTokens == 0 {
			t.Errorf("request %d generated nothing: %+v", i, seq[i])
		}
		sampled += seq[i].Usage.CompletionTokens
		distinct[seq[i].Text] = true
	}
	for i, g := range grammars {
		if g != nil && !g.closed.Load() {
			t.Errorf("request %d: grammar not closed", i)
		}
	}
	if len(distinct) < 20 {
		t.Fatalf("only %d distinct outputs of 24: the mix does not exercise the sampler", len(distinct))
	}
}

// The step budget is sized from the measured cost of a pass (StepTokens 0):
// where a decode costs the same whatever its tokens (a GPU), a burst of
// prompts is prefilled in big chunks; where the cost grows with every token
// (a CPU), in chunks of DefaultStepTokens at most. The costs come from a
// clock that only decodes move (costClock), so no wall time is measured.
func TestStepBudgetFromFakeCosts(t *testing.T) {
	for _, c := range []struct {
		name          string
		fixed, per    time.Duration
		minMax, maxMx int
	}{
		{"flat", 2 * time.Millisecond, 0, 2 * scheduler.DefaultStepTokens, 512},
		{"linear", 0, 250 * time.Microsecond, 1, scheduler.DefaultStepTokens},
		// A CPU's pass has a fixed part too, under a token's cost.
		{"linear-with-fixed", 200 * time.Microsecond, 250 * time.Microsecond, 1, scheduler.DefaultStepTokens},
	} {
		t.Run(c.name, func(t *testing.T) {
			fake := enginetest.New(16, 1024, 512)
			s := harnessWith(t, fake, scheduler.Options{}, func(s *scheduler.Scheduler) {
				useCostClock(s, fake, func(n int) time.Duration { return c.fixed + time.Duration(n)*c.per })
			})
			var wg sync.WaitGroup
			for i := range 8 {
				p := prompt(fmt.Sprintf("%02d %s", i, strings.Repeat("p", 250)))
				st, err := s.Submit(context.Background(), scheduler.Request{Prompt: p, MaxTokens: 4})
				if err != nil {
					t.Fatal(err)
				}
				wg.Go(func() {
					r := collect(t, context.Background(), st)
					if want := expected(p, 4); r.text != want {
						t.Errorf("request %d: %q, want %q", i, r.text, want)
					}
				})
			}
			wg.Wait()
			cs := fake.Counters()
			if cs.MaxBatch < c.minMax || cs.MaxBatch > c.maxMx {
				t.Fatalf("largest step %d tokens, want %d..%d (steps %v)", cs.MaxBatch, c.minMax, c.maxMx, cs.BatchSizes)
			}
			t.Logf("%d decodes, largest %d tokens, step limit now %d", cs.Decodes, cs.MaxBatch, s.Stats().StepLimit)
		})
	}
}

type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The trace step log breaks every decode's step down into its parts; debug
// has no step lines.
func TestDebugStepLogBreakdown(t *testing.T) {
	var quiet logBuf
	qs := harness(t, enginetest.New(2, 256, 64), scheduler.Options{Logger: slog.New(slog.NewTextHandler(&quiet, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	run(t, qs, scheduler.Request{Prompt: prompt("log me"), MaxTokens: 4})
	if strings.Contains(quiet.String(), "msg=step") {
		t.Fatalf("step lines at debug:\n%s", quiet.String())
	}
	var buf logBuf
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: scheduler.LevelTrace}))
	s := harness(t, enginetest.New(2, 256, 64), scheduler.Options{Logger: log})
	// Four steps: a step's line is written after it emits its token, so
	// the last one may still be on its way when run returns; the first
	// three are not.
	run(t, s, scheduler.Request{Prompt: prompt("log me"), MaxTokens: 4})
	steps := 0
	for _, line := range strings.Split(buf.String(), "\n") {
		if !strings.Contains(line, "msg=step") {
			continue
		}
		steps++
		for _, k := range []string{" ms=", " build_ms=", " fetch_ms=", " sample_ms=", " emit_ms=", " rows=", " step_tokens="} {
			if !strings.Contains(line, k) {
				t.Errorf("step log without %q: %s", k, line)
			}
		}
	}
	if steps < 3 {
		t.Fatalf("%d step lines:\n%s", steps, buf.String())
	}
}

// On a device the readers of a step's tokens are woken just before the next
// decode rather than while the step's rows are sampled (deferWake); on a
// CPU at once. Either way, when the next decode starts, the reader of every
// generating stream has been woken for the token of the step before, and
// the text is what the fake generates.
func TestReadersWokenByTheNextDecode(t *testing.T) {
	for _, device := range []bool{false, true} {
		t.Run(map[bool]string{false: "cpu", true: "device"}[device], func(t *testing.T) {
			fake := enginetest.New(2, 256, 64)
			if device {
				fake.SetGPULayers(1)
			}
			p := prompt("Once upon a time")
			const n = 12
			var (
				mu      sync.Mutex
				st      *scheduler.Stream
				decodes int
				got     strings.Builder
				missed  []int
				last    = make(chan struct{}) // the hook is the reader until the last decode
			)
			fake.FailDecode = func([]engine.BatchEntry) error {
				mu.Lock()
				defer mu.Unlock()
				decodes++
				if decodes == n {
					defer close(last)
				}
				if st == nil {
					return nil
				}
				select {
				case <-st.Ready():
				default:
					if decodes > 1 {
						missed = append(missed, decodes)
					}
					return nil
				}
				ev, ok, err := st.TryNext()
				if err != nil || !ok {
					missed = append(missed, decodes)
					return nil
				}
				for _, f := range ev.Fragments {
					got.WriteString(f.Text)
				}
				return nil
			}
			s := harness(t, fake, scheduler.Options{SampleWorkers: 2})
			mu.Lock()
			var err error
			st, err = s.Submit(context.Background(), scheduler.Request{Prompt: p, MaxTokens: n})
			mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-last:
			case <-time.After(10 * time.Second):
				t.Fatal("no last decode")
			}
			r := collect(t, context.Background(), st)
			mu.Lock()
			defer mu.Unlock()
			if len(missed) > 0 {
				t.Errorf("decodes %v started before the reader was woken for the step before", missed)
			}
			if text := got.String() + r.text; text != expected(p, n) {
				t.Errorf("text %q, want %q", text, expected(p, n))
			}
			// One decode per token after the prompt's: the hook saw n-1
			// tokens (the last ends the request without a decode).
			if decodes != n || len([]rune(got.String())) != n-1 {
				t.Errorf("%d decodes, %q seen by them; want %d and %d tokens", decodes, got.String(), n, n-1)
			}
		})
	}
}
