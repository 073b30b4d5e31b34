package httpapi

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
)

// The web UI: built from ui/ by tools/uibuild (make ui) and embedded, so
// every node serves it from its binary; it calls the public API with the
// same tokens.
//
//go:embed ui/index.html ui/app.js ui/app.css
var uiFiles embed.FS

type uiFile struct {
	body        []byte
	contentType string
	etag        string
}

var uiAssets = func() map[string]uiFile {
	types := map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	out := map[string]uiFile{}
	for _, name := range []string{"index.html", "app.js", "app.css"} {
		b, err := uiFiles.ReadFile("ui/" + name)
		if err != nil {
			panic(err) // embedded at build time
		}
		sum := sha256.Sum256(b)
		out[name] = uiFile{b, types[path.Ext(name)], `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return out
}()

// serveUI serves one file of the UI, revalidated by its ETag, under a
// policy that lets the page load only its own script and style.
func serveUI(name string) http.HandlerFunc {
	f := uiAssets[name]
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		if r.Header.Get("If-None-Match") == f.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(f.body)
	}
}
