package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/server/api"
)

// Models is what the server serves: the models a request may name, loaded
// on demand. server/stack implements it (one model or a catalog); the
// server only asks.
type Models interface {
	// Acquire returns the loaded model that id (an id or an alias) names,
	// loading it first when needed and waiting while it loads (bounded by
	// ctx). release must be called once the request is done with the
	// model: a model in use is never unloaded. Errors: *UnknownModelError,
	// *UnusableModelError, *ModelLoadError, scheduler.ErrQueueFull (too
	// many requests wait for the model's load), ErrNoRoom, or ctx's error.
	Acquire(ctx context.Context, id string) (m *Model, release func(), err error)
	// List returns every model, in the catalog's order.
	List() []ModelStatus
	// Status returns one model by id or alias.
	Status(id string) (ModelStatus, bool)
	// LoadModel loads a model now (the operator's endpoint) and waits for
	// it; UnloadModel unloads it once its running requests have finished.
	LoadModel(ctx context.Context, id string) error
	UnloadModel(ctx context.Context, id string) error
	// Stats sums the schedulers' counters over every model loaded since the
	// start (the gauges over the loaded ones).
	Stats() scheduler.Stats
	// Ready is false while a model that must be loaded at start is not.
	Ready() bool
}

// ModelStatus is what /v1/models says of a model.
type ModelStatus struct {
	ID      string
	Aliases []string
	Created int64
	// ContextLength is the context of one request (the loaded value, or
	// what the configuration will give when it is known before loading).
	ContextLength int
	Arch          string
	Quantization  string
	SizeBytes     int64
	// SHA256 is the file's checksum when known (pinned or recorded).
	SHA256 string
	// State is "loaded", "loading", "unloading", "unloaded" or "unusable"
	// (Error says why).
	State string
	Error string
	// Loads and Unloads count since the start, unloads by reason ("lru",
	// "idle", "operator"); LoadSeconds is the last load's duration.
	Loads       uint64
	Unloads     map[string]uint64
	LoadSeconds float64
	// MemoryBytes is the estimated host and GPU memory when loaded.
	HostBytes, GPUBytes uint64
}

// Model states of ModelStatus.State.
const (
	StateLoaded  = api.ModelLoaded
	StateLoading = api.ModelLoading
	// StateUnloading: its loop is stopping and its memory not yet free.
	StateUnloading = api.ModelUnloading
	StateUnloaded  = api.ModelUnloaded
	StateUnusable  = api.ModelUnusable
)

// SamplingDefaults are a model's configured sampling values for what a
// request leaves out (nil: the API's defaults). TopK, MinP and
// RepeatPenalty are not request fields: they apply to every request.
type SamplingDefaults struct {
	Temperature, TopP, MinP, RepeatPenalty *float64
	TopK                                   *int
}

// UnknownModelError: no model has this id or alias (404 model_not_found).
// Known are the models that exist, which the answer lists.
type UnknownModelError struct {
	ID    string
	Known []KnownModel
}

// KnownModel is a model's id and aliases, as an UnknownModelError lists it.
type KnownModel struct {
	ID      string
	Aliases []string
}

func (e *UnknownModelError) Error() string {
	return fmt.Sprintf("the model '%s' does not exist%s", e.ID, knownList(e.Known))
}

// knownList is "; the models served are: a (aliases: asi1-mini), b", or
// "; no model is served" when there is none.
func knownList(known []KnownModel) string {
	if len(known) == 0 {
		return "; no model is served"
	}
	parts := make([]string, 0, len(known))
	for _, k := range known {
		p := k.ID
		if len(k.Aliases) > 0 {
			p += " (aliases: " + strings.Join(k.Aliases, ", ") + ")"
		}
		parts = append(parts, p)
	}
	return "; the models served are: " + strings.Join(parts, ", ") + " (GET /v1/models lists them)"
}

// UnusableModelError: the model is in the catalog but cannot be served (a
// corrupt file, a checksum that no longer matches): 404 model_not_found
// with the reason, since retrying cannot help.
type UnusableModelError struct {
	ID     string
	Reason string
}

func (e *UnusableModelError) Error() string {
	return fmt.Sprintf("the model '%s' cannot be served: %s", e.ID, e.Reason)
}

// ModelLoadError: loading failed in a way that may pass (memory): 503
// model_loading with Retry-After.
type ModelLoadError struct {
	ID  string
	Err error
}

func (e *ModelLoadError) Error() string {
	return fmt.Sprintf("the model '%s' could not be loaded: %v", e.ID, e.Err)
}
func (e *ModelLoadError) Unwrap() error { return e.Err }

// ErrNoRoom: a model cannot be loaded because every loaded model is in use
// and the memory budget has no room for it (503 server_overloaded).
var ErrNoRoom = errors.New("no room to load the model: every loaded model is busy")

// noModels serves nothing (a Server built without Models).
type noModels struct{}

func (noModels) Acquire(context.Context, string) (*Model, func(), error) {
	return nil, nil, errModelLoading
}
func (noModels) List() []ModelStatus                       { return nil }
func (noModels) Status(string) (ModelStatus, bool)         { return ModelStatus{}, false }
func (noModels) LoadModel(context.Context, string) error   { return errModelLoading }
func (noModels) UnloadModel(context.Context, string) error { return errModelLoading }
func (noModels) Stats() scheduler.Stats                    { return scheduler.Stats{} }
func (noModels) Ready() bool                               { return false }

// newModelObject is one entry of /v1/models: the contract's fields, then
// our extensions (what an operator and a client choosing a model need).
func newModelObject(st ModelStatus) api.Model {
	o := api.Model{
		ID: st.ID, Object: "model", Created: st.Created, OwnedBy: "asi1-local", ContextLength: st.ContextLength,
		Aliases: st.Aliases, Arch: st.Arch, Quantization: st.Quantization, SizeBytes: st.SizeBytes,
		Loaded: st.State == StateLoaded, Status: st.State, Error: st.Error,
	}
	if o.Aliases == nil {
		o.Aliases = []string{}
	}
	if st.SHA256 != "" {
		sum := st.SHA256
		o.SHA256 = &sum
	}
	return o
}

func (s *Server) listModels(c *gin.Context) {
	list := s.models.List()
	out := api.ModelList{Object: "list", Data: make([]api.Model, 0, len(list))}
	for _, st := range list {
		out.Data = append(out.Data, newModelObject(st))
	}
	c.JSON(http.StatusOK, &out)
}

func (s *Server) getModel(c *gin.Context) {
	st, ok := s.models.Status(c.Param("id"))
	if !ok {
		var known []KnownModel
		for _, m := range s.models.List() {
			known = append(known, KnownModel{ID: m.ID, Aliases: m.Aliases})
		}
		WriteError(c, modelNotFound(c.Param("id"), known))
		return
	}
	c.JSON(http.StatusOK, newModelObject(st))
}

// loadModel is POST /v1/models/{id}/load: load now and answer the model
// object once loaded.
func (s *Server) loadModel(c *gin.Context) {
	id := c.Param("id")
	if s.draining.Load() {
		WriteError(c, ErrorFor(errShuttingDown))
		return
	}
	if err := s.models.LoadModel(c.Request.Context(), id); err != nil {
		WriteError(c, ErrorFor(err))
		return
	}
	s.getModel(c)
}

// unloadModel is POST /v1/models/{id}/unload: new requests load it again.
func (s *Server) unloadModel(c *gin.Context) {
	if err := s.models.UnloadModel(c.Request.Context(), c.Param("id")); err != nil {
		WriteError(c, ErrorFor(err))
		return
	}
	s.getModel(c)
}

func modelNotFound(id string, known []KnownModel) *APIError {
	return newError(CodeModelNotFound, "model", "The model '%s' does not exist%s", id, knownList(known))
}
