package server

import (
	"fmt"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/models"
)

// outputPlan is how a request's output is constrained and read: the grammar
// that sampling must follow (response_format, forced tool calls) and whether
// tool calls are parsed from the answer.
type outputPlan struct {
	grammar engine.Grammar // nil: unconstrained; the scheduler owns it once submitted
	// triggers make grammar lazy (scheduler.Request.GrammarTriggers).
	triggers []engine.Token
	tools    bool // parse tool calls out of the answer
	format   models.ToolFormat
	names    map[string]bool
	parallel bool
	// forced: the grammar makes the answer nothing but tool calls.
	forced bool
	// build is how long the grammar took to build (schema conversion and
	// parsing), for the log.
	build time.Duration
}

// planOutput decides a request's output constraints. openThought is the
// closing tag the answer must start with when the prompt opened a thought
// ("" otherwise): a constrained answer has no reasoning.
func (s *Server) planOutput(m *Model, req *ChatRequest, closeThought string) (outputPlan, *APIError) {
	var p outputPlan
	mode := req.ToolChoice.Mode
	if len(req.Tools) > 0 && mode != "none" {
		p.tools = true
		p.format = m.ToolFormat
		p.parallel = req.ParallelToolCalls
		p.names = make(map[string]bool, len(req.Tools))
		for _, t := range req.Tools {
			p.names[t.Name] = true
		}
		if p.format == models.ToolFormatNone {
			if mode == "auto" {
				// No tool syntax known for this model: it answers in text
				// (contract 3.2).
				p.tools = false
			} else {
				p.format = models.ToolFormatHermes // the syntax our grammar makes it write
			}
		}
	}
	forced := mode == "required" || mode == "function"
	if !forced && req.ResponseFormat == nil {
		if p.tools && m.Grammar != nil && m.toolTrigger >= 0 {
			return s.lazyToolGrammar(m, req, p), nil
		}
		return p, nil
	}
	if forced && len(req.Tools) > 0 {
		return s.toolGrammar(m, req, p, closeThought)
	}
	if p.tools {
		return p, badRequest(CodeUnsupportedValue, "response_format",
			"response_format %s together with tools and tool_choice \"auto\" is not supported: the answer can be either constrained JSON or tool calls; set tool_choice to \"none\", \"required\" or a function",
			quotedStr(req.ResponseFormat.Type))
	}
	if m.Grammar == nil {
		return p, badRequest(CodeUnsupportedValue, "response_format",
			"response_format %s is not supported by this server's engine", quotedStr(req.ResponseFormat.Type))
	}
	schema := []byte(`{"type":"object"}`)
	param := "response_format"
	if req.ResponseFormat.Type == "json_schema" {
		schema = req.ResponseFormat.Schema
		param = "response_format.json_schema.schema"
		if err := models.CheckSchema(schema); err != nil {
			return p, badRequest(CodeUnsupportedValue, param, "%v", err)
		}
	}
	t0 := time.Now()
	g, aerr := compileGrammar(m.Grammar, schema, models.SchemaRoot(closeThought), param)
	p.grammar, p.build = g, time.Since(t0)
	return p, aerr
}

// toolGrammar constrains the answer to calls of the allowed tools.
func (s *Server) toolGrammar(m *Model, req *ChatRequest, p outputPlan, closeThought string) (outputPlan, *APIError) {
	if m.Grammar == nil {
		return p, badRequest(CodeUnsupportedValue, "tool_choice",
			"tool_choice %s needs grammar-constrained sampling, which this server's engine lacks", quotedStr(req.ToolChoice.Mode))
	}
	only := ""
	if req.ToolChoice.Mode == "function" {
		only = req.ToolChoice.Name
		p.names = map[string]bool{only: true}
	}
	g, build, aerr := callGrammar(m, req, p, only, closeThought)
	p.grammar, p.build, p.forced = g, build, true
	return p, aerr
}

// lazyToolGrammar makes the calls of tool_choice "auto" valid by
// construction: free text until the model writes its call marker (one
// token), then a grammar of calls of the declared tools. When a tool's
// parameters use what the grammar cannot enforce, or the grammar cannot be
// built, the calls are only parsed, as they are for models without a
// marker token.
func (s *Server) lazyToolGrammar(m *Model, req *ChatRequest, p outputPlan) outputPlan {
	g, build, aerr := callGrammar(m, req, p, "", "")
	if aerr != nil {
		s.log.Debug("tool_choice auto: no call grammar, calls are parsed only", "err", aerr.Message)
		return p
	}
	p.grammar, p.triggers, p.build = g, []engine.Token{m.toolTrigger}, build
	return p
}

// callGrammar builds the grammar of calls, in p's format, to the tool named
// only ("" for any declared tool), after prefix. A tool's parameters that
// the grammar cannot enforce are a 400 naming them.
func callGrammar(m *Model, req *ChatRequest, p outputPlan, only, prefix string) (engine.Grammar, time.Duration, *APIError) {
	t0 := time.Now()
	var specs []models.ToolSpec
	for i, t := range req.Tools {
		if only != "" && t.Name != only {
			continue
		}
		if len(t.Parameters) > 0 {
			if err := models.CheckSchema(t.Parameters); err != nil {
				return nil, 0, badRequest(CodeUnsupportedValue, fmt.Sprintf("tools[%d].function.parameters", i), "%v", err)
			}
		}
		specs = append(specs, models.ToolSpec{Name: t.Name, Parameters: t.Parameters})
	}
	schema, root := models.ToolCallGrammar(p.format, specs, p.parallel, prefix)
	g, aerr := compileGrammar(m.Grammar, schema, root, "tools")
	return g, time.Since(t0), aerr
}

// compileGrammar converts schema (checked with models.CheckSchema) into a
// grammar: what the engine's converter does not enforce (formats, number
// bounds; see models.LowerSchema) is lowered first and spliced back in.
func compileGrammar(gc engine.GrammarCompiler, schema []byte, root, param string) (engine.Grammar, *APIError) {
	low, err := models.LowerSchema(schema)
	if err != nil {
		return nil, badRequest(CodeUnsupportedValue, param, "%v", err)
	}
	gbnf, err := gc.SchemaGrammar(low.Schema, root)
	if err != nil {
		return nil, badRequest(CodeUnsupportedValue, param, "%v", err)
	}
	if gbnf, err = low.Splice(gbnf); err != nil {
		return nil, ErrorFor(fmt.Errorf("could not build the grammar: %w", err))
	}
	g, err := gc.NewGrammar(gbnf)
	if err != nil {
		return nil, ErrorFor(fmt.Errorf("could not build the grammar: %w", err))
	}
	return g, nil
}
