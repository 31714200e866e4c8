package server_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/enginetest"
	"github.com/asi1d/asi1d/server/api"
)

func embSDK(url string) openai.Client {
	return openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey("unused"),
		option.WithMaxRetries(0), option.WithRequestTimeout(time.Minute))
}

func embVec(t *testing.T, e openai.Embedding) []float64 {
	t.Helper()
	if raw := e.JSON.Embedding.Raw(); strings.HasPrefix(raw, `"`) { // base64
		s, err := strconv.Unquote(raw)
		if err != nil {
			t.Fatal(err)
		}
		v, err := api.DecodeBase64Vector(s)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	return e.Embedding
}

func norm(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s)
}

func cos(a, b []float64) float64 {
	var ab float64
	for i := range a {
		ab += a[i] * b[i]
	}
	return ab / (norm(a) * norm(b))
}

func embed(t *testing.T, c openai.Client, p openai.EmbeddingNewParams) [][]float64 {
	t.Helper()
	if p.Model == "" {
		p.Model = "asi1-mini"
	}
	r, err := c.Embeddings.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Object != "list" || r.Model != p.Model {
		t.Fatalf("object %q model %q", r.Object, r.Model)
	}
	var out [][]float64
	for i, d := range r.Data {
		if d.Index != int64(i) || d.Object != "embedding" {
			t.Fatalf("data[%d]: index %d object %q", i, d.Index, d.Object)
		}
		out = append(out, embVec(t, d))
	}
	return out
}

func texts(s ...string) openai.EmbeddingNewParamsInputUnion {
	return openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: s}
}

// The OpenAI SDK for Go against the server on the fake engine: every
// input shape, both encodings, dimensions, usage.
func TestEmbeddingsOpenAISDK(t *testing.T) {
	e := ctStart(t, ctConfig{})
	c := embSDK(e.url)
	docs := []string{"hello world", "a second, longer document", "hello world"}
	r, err := c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "asi1-mini", Input: texts(docs...)})
	if err != nil {
		t.Fatal(err)
	}
	wantTokens := 0
	for _, d := range docs {
		wantTokens += len(d) + 1 // the fake: BOS and a token a byte
	}
	if r.Usage.PromptTokens != int64(wantTokens) || r.Usage.TotalTokens != int64(wantTokens) {
		t.Errorf("usage %+v, want %d tokens", r.Usage, wantTokens)
	}
	batch := embed(t, c, openai.EmbeddingNewParams{Input: texts(docs...)})
	for i, v := range batch {
		if len(v) != enginetest.EmbedDim || math.Abs(norm(v)-1) > 1e-5 {
			t.Errorf("vector %d: %d dimensions, norm %v", i, len(v), norm(v))
		}
	}
	if cos(batch[0], batch[2]) < 1-1e-4 || cos(batch[0], batch[1]) > 0.9999 {
		t.Errorf("same text cos %v, different texts cos %v", cos(batch[0], batch[2]), cos(batch[0], batch[1]))
	}
	alone := embed(t, c, openai.EmbeddingNewParams{Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String(docs[1])}})
	if cs := cos(alone[0], batch[1]); cs < 1-1e-4 {
		t.Errorf("alone and in a batch: cosine %v", cs)
	}
	b64 := embed(t, c, openai.EmbeddingNewParams{Input: texts(docs...), EncodingFormat: openai.EmbeddingNewParamsEncodingFormatBase64})
	for i := range batch {
		for k := range batch[i] {
			if math.Abs(b64[i][k]-batch[i][k]) > 1e-6 {
				t.Fatalf("base64 vector %d differs at %d: %v vs %v", i, k, b64[i][k], batch[i][k])
			}
		}
	}
	short := embed(t, c, openai.EmbeddingNewParams{Input: texts(docs...), Dimensions: openai.Int(4)})
	for i, v := range short {
		if len(v) != 4 || math.Abs(norm(v)-1) > 1e-5 {
			t.Fatalf("dimensions 4: vector %d has %d, norm %v", i, len(v), norm(v))
		}
		if cs := cos(v, batch[i][:4]); cs < 1-1e-5 {
			t.Errorf("dimensions 4 is not the renormalised prefix: cosine %v", cs)
		}
	}
	toks, _ := e.fake.Tokenize(docs[1], true, false)
	ids := make([]int64, len(toks))
	for i, tk := range toks {
		ids[i] = int64(tk)
	}
	byIDs := embed(t, c, openai.EmbeddingNewParams{Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfTokens: ids}})
	byArrays := embed(t, c, openai.EmbeddingNewParams{Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfTokenArrays: [][]int64{ids, ids[:3]}}})
	if cos(byIDs[0], batch[1]) < 1-1e-6 || cos(byArrays[0], batch[1]) < 1-1e-6 || len(byArrays) != 2 {
		t.Errorf("token ids and text differ: cosine %v, %v", cos(byIDs[0], batch[1]), cos(byArrays[0], batch[1]))
	}
	if got := e.fake.Counters().EmbedInputs; got < 15 {
		t.Errorf("the fake embedded %d inputs", got)
	}
}

// Bad input through the SDK: each a 4xx in the error shape, naming the
// field.
func TestEmbeddingsSDKErrors(t *testing.T) {
	e := ctStart(t, ctConfig{})
	c := embSDK(e.url)
	cases := []struct {
		name   string
		p      openai.EmbeddingNewParams
		status int
		code   string
		param  string
	}{
		{"empty string", openai.EmbeddingNewParams{Input: texts("a", "")}, 400, "invalid_value", "input[1]"},
		{"too long", openai.EmbeddingNewParams{Input: texts(strings.Repeat("x", 300))}, 400, "context_length_exceeded", "input[0]"},
		{"dimensions too large", openai.EmbeddingNewParams{Input: texts("a"), Dimensions: openai.Int(enginetest.EmbedDim + 1)}, 400, "invalid_value", "dimensions"},
		{"unknown model", openai.EmbeddingNewParams{Model: "nope", Input: texts("a")}, 404, "model_not_found", "model"},
		{"token outside the vocabulary", openai.EmbeddingNewParams{Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfTokens: []int64{1, 99999}}}, 400, "invalid_value", "input[1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.p.Model == "" {
				tc.p.Model = "asi1-mini"
			}
			_, err := c.Embeddings.New(context.Background(), tc.p)
			var ae *openai.Error
			if !errors.As(err, &ae) {
				t.Fatalf("err %v, want an API error", err)
			}
			if ae.StatusCode != tc.status || ae.Code != tc.code || (tc.param != "" && ae.Param != tc.param) {
				t.Fatalf("got %d %s (%s): %s; want %d %s (%s)", ae.StatusCode, ae.Code, ae.Param, ae.Message, tc.status, tc.code, tc.param)
			}
		})
	}
	if st := e.sched.Stats(); st.EmbedWaiting != 0 || st.EmbedInputs != 0 {
		t.Errorf("refused requests reached the scheduler: %+v", st)
	}
}

// A pass the engine fails is the server's 500, and the next request works.
func TestEmbeddingsFailedPassIs5xxOnce(t *testing.T) {
	e := ctStart(t, ctConfig{setup: func(f *enginetest.Fake) {
		f.FailEmbed = func([][]engine.Token) error { return errors.New("boom") }
	}})
	r := e.do(http.MethodPost, "/v1/embeddings", `{"model":"asi1-mini","input":"hi"}`)
	if r.status != 500 || !strings.Contains(string(r.body), "internal_error") {
		t.Fatalf("%d %s", r.status, r.body)
	}
	e.fake.FailEmbed = nil
	if r := e.do(http.MethodPost, "/v1/embeddings", `{"model":"asi1-mini","input":"hi"}`); r.status != 200 {
		t.Fatalf("after a failed pass: %d %s", r.status, r.body)
	}
}
