package api

// Wire types of GET /v1/models and GET /v1/models/{id} (contract section
// 8, plus asi1d's catalog fields).

// ModelsPath is the models endpoint's path.
const ModelsPath = "/v1/models"

// Model states of Model.Status.
const (
	ModelLoaded    = "loaded"
	ModelLoading   = "loading"
	ModelUnloading = "unloading"
	ModelUnloaded  = "unloaded"
	ModelUnusable  = "unusable"
)

// ModelList is the body of GET /v1/models. Data comes first: the server
// writes the list as a map, whose keys encoding/json sorts.
type ModelList struct {
	Data   []Model `json:"data"`
	Object string  `json:"object"` // "list"
}

// Model is one model object: the contract's fields, then asi1d's
// extensions (what an operator and a client choosing a model need).
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"` // "model"
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// ContextLength is the context of one request, in tokens.
	ContextLength int      `json:"context_length"`
	Aliases       []string `json:"aliases"`
	Arch          string   `json:"architecture,omitempty"`
	Quantization  string   `json:"quantization,omitempty"`
	SizeBytes     int64    `json:"size_bytes,omitempty"`
	SHA256        *string  `json:"sha256"`
	// Loaded is Status == "loaded"; a server without a catalog may leave
	// both out.
	Loaded bool   `json:"loaded"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}
