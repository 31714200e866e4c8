package llamacpp_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
	"github.com/asi1d/asi1d/models"
	"github.com/asi1d/asi1d/sampler"
)

// benchModel is stories260K, or $ASI1D_BENCH_MODEL (e.g. a synth model).
func benchModel(b *testing.B) string {
	if p := os.Getenv("ASI1D_BENCH_MODEL"); p != "" {
		return p
	}
	return testmodel.Path(b, testmodel.Stories260K)
}

var greedySampler = sampler.New(sampler.Params{})

// benchPoll is $ASI1D_BENCH_POLL (llamacpp.Options.ThreadPoll), default -1.
func benchPoll() int {
	if v, err := strconv.Atoi(os.Getenv("ASI1D_BENCH_POLL")); err == nil {
		return v
	}
	return -1
}

// BenchmarkDecode measures the raw engine's single-sequence decode: one
// token per llama_decode, greedy, no scheduler. Reports tok/s.
func BenchmarkDecode(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			be, err := llamacpp.Open(benchModel(b), llamacpp.Options{CtxSize: 2048, Threads: threads, FlashAttention: os.Getenv("ASI1D_BENCH_FA"), ThreadPoll: benchPoll()})
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			prompt := testmodel.ReferenceTokens
			batch := make([]engine.BatchEntry, len(prompt))
			for i, t := range prompt {
				batch[i] = engine.BatchEntry{Token: t, Pos: int32(i), Logits: i == len(prompt)-1}
			}
			if err := be.Decode(batch); err != nil {
				b.Fatal(err)
			}
			tok := argmax(be.Logits(len(prompt) - 1))
			pos := int32(len(prompt))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if pos >= int32(be.Info().NCtxSeq) {
					b.StopTimer()
					be.RemoveKV(0, int32(len(prompt)), -1)
					pos = int32(len(prompt))
					b.StartTimer()
				}
				if err := be.Decode([]engine.BatchEntry{{Token: tok, Pos: pos, Logits: true}}); err != nil {
					b.Fatal(err)
				}
				tok = argmax(be.Logits(0))
				pos++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// BenchmarkPrefill measures prompt processing in one batch of 128 tokens.
func BenchmarkPrefill(b *testing.B) {
	be, err := llamacpp.Open(benchModel(b), llamacpp.Options{CtxSize: 1024, Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	const n = 128
	batch := make([]engine.BatchEntry, n)
	for i := range batch {
		batch[i] = engine.BatchEntry{Token: engine.Token(3 + i%200), Pos: int32(i), Logits: i == n-1}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		be.RemoveKV(0, 0, -1)
		if err := be.Decode(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "tok/s")
}

// largeSchema is an object of 120 properties of every supported kind (about
// 9 kB of JSON Schema), for the cost of building a grammar.
func largeSchema() []byte {
	var b strings.Builder
	b.WriteString(`{"type":"object","properties":{`)
	var req []string
	for i := range 120 {
		if i > 0 {
			b.WriteByte(',')
		}
		name := fmt.Sprintf("field_%03d", i)
		req = append(req, `"`+name+`"`)
		switch i % 6 {
		case 0:
			fmt.Fprintf(&b, `"%s":{"type":"string","maxLength":%d}`, name, 8+i%20)
		case 1:
			fmt.Fprintf(&b, `"%s":{"enum":["alpha","beta","gamma","delta","epsilon","zeta"]}`, name)
		case 2:
			fmt.Fprintf(&b, `"%s":{"type":"integer","minimum":%d,"maximum":%d}`, name, -i, 1000+i*37)
		case 3:
			fmt.Fprintf(&b, `"%s":{"type":"array","items":{"type":"number"},"maxItems":5}`, name)
		case 4:
			fmt.Fprintf(&b, `"%s":{"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"string","format":"date"},"c":{"anyOf":[{"type":"null"},{"type":"integer"}]}},"required":["a","b"],"additionalProperties":false}`, name)
		default:
			fmt.Fprintf(&b, `"%s":{"type":"string","pattern":"^[A-Z]{2}-[0-9]{3,5}$"}`, name)
		}
	}
	fmt.Fprintf(&b, `},"required":[%s],"additionalProperties":false}`, strings.Join(req, ","))
	return []byte(b.String())
}

// BenchmarkGrammarBuild is the cost of turning a large JSON Schema into a
// grammar (llama.cpp's converter, then parsing the GBNF over the
// vocabulary): what a request with response_format pays before queueing.
func BenchmarkGrammarBuild(b *testing.B) {
	be, err := llamacpp.Open(benchModel(b), llamacpp.Options{CtxSize: 256, Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	twoTools, root := models.ToolCallGrammar(models.ToolFormatHermes, []models.ToolSpec{
		{Name: "get_weather", Parameters: []byte(`{"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]},"days":{"type":"integer","minimum":1,"maximum":7}},"required":["city","unit"]}`)},
		{Name: "get_time", Parameters: []byte(`{"type":"object","properties":{"zone":{"type":"string"}},"required":["zone"]}`)},
	}, true, "")
	for _, c := range []struct {
		name   string
		schema []byte
		root   string
	}{{"large-schema", largeSchema(), ""}, {"two-tools", twoTools, root}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				gbnf, err := be.SchemaGrammar(c.schema, c.root)
				if err != nil {
					b.Fatal(err)
				}
				g, err := be.NewGrammar(gbnf)
				if err != nil {
					b.Fatal(err)
				}
				g.Close()
			}
		})
	}
}

// BenchmarkGrammarDecode is single-sequence greedy decoding without and
// with a grammar ({"type":"object"}: any JSON object), the grammar applied
// as the scheduler applies it: check the drawn token, mask the whole
// vocabulary only when it is refused. Reports tok/s and the share of tokens
// that needed the mask. A sequence restarts when the grammar ends it or the
// context fills.
func BenchmarkGrammarDecode(b *testing.B) {
	for _, mode := range []string{"free", "json"} {
		b.Run(mode, func(b *testing.B) {
			be, err := llamacpp.Open(benchModel(b), llamacpp.Options{CtxSize: 512, Threads: 2, ThreadPoll: benchPoll()})
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			gbnf, err := be.SchemaGrammar([]byte(`{"type":"object"}`), "")
			if err != nil {
				b.Fatal(err)
			}
			prompt := testmodel.ReferenceTokens
			var g engine.Grammar
			pos, tok := int32(0), engine.Token(0)
			restart := func() {
				if g != nil {
					g.Close()
					g = nil
				}
				if mode == "json" {
					if g, err = be.NewGrammar(gbnf); err != nil {
						b.Fatal(err)
					}
				}
				be.RemoveKV(0, 0, -1)
				batch := make([]engine.BatchEntry, len(prompt))
				for i, t := range prompt {
					batch[i] = engine.BatchEntry{Token: t, Pos: int32(i), Logits: i == len(prompt)-1}
				}
				if err := be.Decode(batch); err != nil {
					b.Fatal(err)
				}
				pos = int32(len(prompt))
				tok = pick(b, be, g, be.Logits(len(prompt)-1), nil)
			}
			restart()
			masked := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if be.IsEOG(tok) || pos >= int32(be.Info().NCtxSeq) {
					b.StopTimer()
					restart()
					b.StartTimer()
				}
				if err := be.Decode([]engine.BatchEntry{{Token: tok, Pos: pos, Logits: true}}); err != nil {
					b.Fatal(err)
				}
				pos++
				tok = pick(b, be, g, be.Logits(0), &masked)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
			b.ReportMetric(float64(masked)/float64(b.N), "fullmask/tok")
			if g != nil {
				g.Close()
			}
		})
	}
}

// pick is greedy sampling under an optional grammar, as the scheduler does
// it: check the draw, then the 256 most likely tokens, then the whole row.
func pick(b *testing.B, be engine.Backend, g engine.Grammar, row []float32, masked *int) engine.Token {
	tok := argmax(row)
	if g == nil {
		return tok
	}
	if !g.Allows(tok) {
		if !greedySampler.ConstrainTop(row, 256, g.AllowsEach) {
			g.Mask(row)
			if masked != nil {
				*masked++
			}
		}
		tok = argmax(row)
	}
	if !be.IsEOG(tok) {
		if err := g.Accept(tok); err != nil {
			b.Fatal(err)
		}
	}
	return tok
}

// BenchmarkGrammarMask is one full-vocabulary mask (what a token the
// grammar refused costs on top of the check), inside a JSON string where
// most tokens are allowed, and at a JSON value's start where few are.
func BenchmarkGrammarMask(b *testing.B) {
	be, err := llamacpp.Open(benchModel(b), llamacpp.Options{CtxSize: 256, Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	row := make([]float32, be.Info().NVocab)
	for _, state := range []string{"value-start", "in-string"} {
		b.Run(state, func(b *testing.B) {
			gbnf, err := be.SchemaGrammar([]byte(`{"type":"string"}`), "")
			if err != nil {
				b.Fatal(err)
			}
			g, err := be.NewGrammar(gbnf)
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			if state == "in-string" {
				quote := engine.Token(-1)
				for t := range be.Info().NVocab {
					if string(be.Piece(engine.Token(t))) == `"` {
						quote = engine.Token(t)
						break
					}
				}
				if err := g.Accept(quote); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				for i := range row {
					row[i] = float32(i % 7)
				}
				g.Mask(row)
			}
			b.ReportMetric(float64(len(row)), "vocab")
		})
	}
}

// BenchmarkChunkAtDepth is one prompt chunk of 8 or 56 tokens decoded after
// 1,536 tokens of the same sequence (the chunks of a long prompt late in
// its prefill), the chunk removed again after each run. ASI1D_BENCH_FA
// picks flash attention.
func BenchmarkChunkAtDepth(b *testing.B) {
	be, err := llamacpp.Open(benchModel(b), llamacpp.Options{CtxSize: 2048, Batch: 512, Threads: 2, FlashAttention: os.Getenv("ASI1D_BENCH_FA")})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	const depth = 1536
	for p0 := 0; p0 < depth; p0 += 512 {
		batch := make([]engine.BatchEntry, 512)
		for i := range batch {
			batch[i] = engine.BatchEntry{Token: engine.Token(3 + (p0+i)%200), Pos: int32(p0 + i)}
		}
		if err := be.Decode(batch); err != nil {
			b.Fatal(err)
		}
	}
	for _, n := range []int{1, 2, 8, 16, 56} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			batch := make([]engine.BatchEntry, n)
			for i := range batch {
				batch[i] = engine.BatchEntry{Token: engine.Token(5 + i), Pos: int32(depth + i), Logits: i == n-1}
			}
			for b.Loop() {
				if err := be.Decode(batch); err != nil {
					b.Fatal(err)
				}
				be.RemoveKV(0, depth, -1)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n)/1000, "ms/token")
		})
	}
}

// BenchmarkSeqLayout decodes one token for each of 8 sequences (of 16) with
// 64 tokens of KV each, the sequences laid out contiguously (0-7), with one
// gap (0-3, 5-8) and strided (0, 2, ..., 14). Without a unified KV cache
// llama.cpp splits a batch into one ubatch per run of consecutive sequence
// ids, and each ubatch reads all the weights.
func BenchmarkSeqLayout(b *testing.B) {
	be, err := llamacpp.Open(benchModel(b), llamacpp.Options{CtxSize: 16 * 256, Parallel: 16, Threads: 2, ThreadPoll: benchPoll()})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	const depth = 64
	for seq := range 16 {
		batch := make([]engine.BatchEntry, depth)
		for i := range batch {
			batch[i] = engine.BatchEntry{Token: engine.Token(3 + (seq+i)%200), Seq: engine.SeqID(seq), Pos: int32(i)}
		}
		if err := be.Decode(batch); err != nil {
			b.Fatal(err)
		}
	}
	layouts := []struct {
		name string
		seqs []engine.SeqID
	}{
		{"contiguous", []engine.SeqID{0, 1, 2, 3, 4, 5, 6, 7}},
		{"one-gap", []engine.SeqID{0, 1, 2, 3, 5, 6, 7, 8}},
		{"strided", []engine.SeqID{0, 2, 4, 6, 8, 10, 12, 14}},
	}
	for _, l := range layouts {
		b.Run(l.name, func(b *testing.B) {
			batch := make([]engine.BatchEntry, len(l.seqs))
			for i, s := range l.seqs {
				batch[i] = engine.BatchEntry{Token: 7, Seq: s, Pos: depth, Logits: true}
			}
			for b.Loop() {
				if err := be.Decode(batch); err != nil {
					b.Fatal(err)
				}
				for _, s := range l.seqs {
					be.RemoveKV(s, depth, -1)
				}
			}
		})
	}
}
