package server

import (
	"bytes"
	"embed"
	"net/http"
	"path"
	"time"

	"github.com/gin-gonic/gin"
)

// The web playground: one HTML page, its scripts (JavaScript modules:
// app.js imports the others) and its style sheet, embedded in the binary. It loads nothing from another host (the
// Content-Security-Policy below forbids it), so it works in an air-gapped
// site; it talks to this server's /v1 API like any other client.
//
//go:embed web/*.html web/*.js web/*.css
var webFS embed.FS

// playgroundCSP allows the page only its own origin: no inline script, no
// remote fonts, scripts or connections.
const playgroundCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var playgroundTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// built is when the binary started serving: the Last-Modified of the
// embedded files (embed.FS has no modification times).
var built = time.Now()

// mountPlayground serves the page at / and its files under /playground/.
func mountPlayground(r *gin.Engine, on bool) {
	if !on {
		return
	}
	getAndHead(r, "/", func(c *gin.Context) { servePlayground(c, "index.html") })
	getAndHead(r, "/playground/:file", func(c *gin.Context) { servePlayground(c, c.Param("file")) })
}

func servePlayground(c *gin.Context, name string) {
	b, err := webFS.ReadFile("web/" + name)
	typ, ok := playgroundTypes[path.Ext(name)]
	if err != nil || !ok || name == "index.html" && c.FullPath() != "/" {
		NoRoute()(c)
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", typ)
	h.Set("Content-Security-Policy", playgroundCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(c.Writer, c.Request, name, built, bytes.NewReader(b))
}
