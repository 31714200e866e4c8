package api

// Wire types of POST /v1/embeddings, as OpenAI's embeddings API defines
// them: input is a string, an array of strings, an array of token ids or an
// array of arrays of token ids; encoding_format "float" (default) or
// "base64" (the little-endian float32 bytes of the vector, base64).

// EmbeddingsPath is the embeddings endpoint's path.
const EmbeddingsPath = "/v1/embeddings"

// Object names and encoding formats of embeddings.
const (
	ObjectList      = "list"
	ObjectEmbedding = "embedding"
	EncodingFloat   = "float"
	EncodingBase64  = "base64"
)

// EmbeddingRequest is an embeddings request as a client sends it. Input is
// any of the four shapes (string, []string, []int, [][]int).
type EmbeddingRequest struct {
	Model          string `json:"model"`
	Input          any    `json:"input"`
	EncodingFormat string `json:"encoding_format,omitempty"`
	Dimensions     int    `json:"dimensions,omitempty"`
	User           string `json:"user,omitempty"`
}

// EmbeddingResponse is the answer: one Embedding per input, in order.
type EmbeddingResponse struct {
	Object string          `json:"object"`
	Data   []Embedding     `json:"data"`
	Model  string          `json:"model"`
	Usage  EmbeddingsUsage `json:"usage"`
}

// Embedding is one input's vector. Embedding holds a []float32 (encoded
// as a JSON array) or, with encoding_format base64, a string; clients
// decoding an answer get []any or string (see FloatVector).
type Embedding struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

// EmbeddingsUsage counts the input tokens; embeddings generate none.
type EmbeddingsUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}
