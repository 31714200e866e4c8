package api

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
)

// Embeddings posts an embeddings request and decodes the answer. A non-2xx
// answer is returned as an error by Do.
func (c *Client) Embeddings(ctx context.Context, req *EmbeddingRequest) (*EmbeddingResponse, error) {
	var out EmbeddingResponse
	if err := c.postJSON(ctx, EmbeddingsPath, "embeddings", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// FloatVector returns an Embedding's vector whichever encoding it came in:
// a JSON array of numbers or base64 of little-endian float32s.
func (e Embedding) FloatVector() ([]float32, error) {
	switch v := e.Embedding.(type) {
	case []float32:
		return v, nil
	case []any:
		out := make([]float32, len(v))
		for i, x := range v {
			f, ok := x.(float64)
			if !ok {
				return nil, fmt.Errorf("embedding %d: element %d is %T, not a number", e.Index, i, x)
			}
			out[i] = float32(f)
		}
		return out, nil
	case string:
		return DecodeBase64Vector(v)
	}
	return nil, fmt.Errorf("embedding %d: unexpected %T", e.Index, e.Embedding)
}

// EncodeBase64Vector is encoding_format base64: the little-endian float32
// bytes of v, standard base64.
func EncodeBase64Vector(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// DecodeBase64Vector reverses EncodeBase64Vector.
func DecodeBase64Vector(s string) ([]float32, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decode a base64 embedding: %w", err)
	}
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("decode a base64 embedding: %d bytes is not a whole number of float32s", len(b))
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}
