package e2e

import (
	"context"
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/asi1d/asi1d/internal/testutil/testmodel"
	"github.com/asi1d/asi1d/internal/testutil/testserver"
	"github.com/asi1d/asi1d/server/api"
)

func e2eNorm(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s)
}

func e2eCos(a, b []float64) float64 {
	var ab float64
	for i := range a {
		ab += a[i] * b[i]
	}
	return ab / (e2eNorm(a) * e2eNorm(b))
}

// The OpenAI SDK's embeddings against the real engine on stories260K
// (mean pooling of a chat model): unit vectors of n_embd 64, base64 equal
// to float, dimensions renormalised, one text alone and in a batch the
// same, token ids the same as their text.
func TestOpenAISDKEmbeddings(t *testing.T) {
	srv := testserver.Start(t, testmodel.Path(t, testmodel.Stories260K), testserver.Options{NoPlayground: true})
	c := sdkClient(srv.URL)
	ctx := context.Background()
	docs := []string{"Once upon a time", "The little dog ran to the park to play.", "Once upon a time"}
	get := func(p openai.EmbeddingNewParams) ([][]float64, *openai.CreateEmbeddingResponse) {
		t.Helper()
		p.Model = "asi1-mini"
		r, err := c.Embeddings.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]float64
		for _, d := range r.Data {
			if p.EncodingFormat == openai.EmbeddingNewParamsEncodingFormatBase64 {
				s, err := strconv.Unquote(d.JSON.Embedding.Raw())
				if err != nil {
					t.Fatal(err)
				}
				v, err := api.DecodeBase64Vector(s)
				if err != nil {
					t.Fatal(err)
				}
				f := make([]float64, len(v))
				for i, x := range v {
					f[i] = float64(x)
				}
				out = append(out, f)
			} else {
				out = append(out, d.Embedding)
			}
		}
		return out, r
	}
	batch, r := get(openai.EmbeddingNewParams{Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: docs}})
	if r.Usage.PromptTokens <= 2*int64(len(testmodel.ReferenceTokens)) || r.Usage.TotalTokens != r.Usage.PromptTokens {
		t.Errorf("usage %+v", r.Usage)
	}
	for i, v := range batch {
		if len(v) != 64 || math.Abs(e2eNorm(v)-1) > 1e-4 {
			t.Errorf("vector %d: %d dimensions, norm %v", i, len(v), e2eNorm(v))
		}
	}
	if cs := e2eCos(batch[0], batch[2]); cs < 1-1e-4 {
		t.Errorf("the same text twice in a batch: cosine %v", cs)
	}
	alone, _ := get(openai.EmbeddingNewParams{Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String(docs[1])}})
	if cs := e2eCos(alone[0], batch[1]); cs < 1-1e-4 {
		t.Errorf("alone and in a batch: cosine %v", cs)
	}
	b64, _ := get(openai.EmbeddingNewParams{Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: docs},
		EncodingFormat: openai.EmbeddingNewParamsEncodingFormatBase64})
	if cs := e2eCos(b64[1], batch[1]); cs < 1-1e-6 {
		t.Errorf("base64 and float: cosine %v", cs)
	}
	short, _ := get(openai.EmbeddingNewParams{Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: docs}, Dimensions: openai.Int(16)})
	if len(short[1]) != 16 || math.Abs(e2eNorm(short[1])-1) > 1e-4 || e2eCos(short[1], batch[1][:16]) < 1-1e-4 {
		t.Errorf("dimensions 16: %d dimensions, norm %v", len(short[1]), e2eNorm(short[1]))
	}
	ids := make([]int64, len(testmodel.ReferenceTokens))
	for i, tk := range testmodel.ReferenceTokens {
		ids[i] = int64(tk)
	}
	byIDs, _ := get(openai.EmbeddingNewParams{Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfTokens: ids}})
	if cs := e2eCos(byIDs[0], batch[0]); cs < 1-1e-4 {
		t.Errorf("token ids %v and their text %q: cosine %v", ids, docs[0], cs)
	}
	_, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "asi1-mini", Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("a")}, Dimensions: openai.Int(65)})
	var ae *openai.Error
	if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Param != "dimensions" {
		t.Errorf("dimensions 65: %v", err)
	}
}
