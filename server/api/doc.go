// Package api is the wire format of asi1d's HTTP API, shared by the
// server and its clients: the request and answer types of each endpoint
// (chat.go, models.go, errors.go, responses.go), server-sent events (sse.go, and the
// chat stream's fast chunk encoding in chat_stream.go), the Prometheus
// metrics reader (metrics.go) and a small Go client (client.go).
//
// The types encode byte for byte as the server's answers (the golden
// samples in testdata are captured server output). The contract is
// shared/ASI1-API.md; docs/API.md documents it for users.
//
// A later endpoint gets its own file (responses.go, embeddings.go,
// completions.go) with its types; its stream uses the named events of
// AppendEvent and SSEReader.
package api
