// Command uibuild bundles and minifies the web UI (ui/) into the files the
// binary serves (httpapi/ui/), with esbuild's Go API: no Node.js needed,
// and the same sources always give the same bytes. With -check it builds
// in memory and fails when the committed files differ.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/evanw/esbuild/pkg/api"
)

func main() {
	check := flag.Bool("check", false, "fail when httpapi/ui is not the build of ui/")
	root := flag.String("root", "../..", "the repository")
	flag.Parse()
	out, err := build(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "uibuild:", err)
		os.Exit(1)
	}
	stale := false
	for name, b := range out {
		path := filepath.Join(*root, "httpapi", "ui", name)
		if *check {
			if old, err := os.ReadFile(path); err != nil || !bytes.Equal(old, b) {
				fmt.Fprintf(os.Stderr, "uibuild: %s is not the build of ui/; run make ui\n", path)
				stale = true
			}
			continue
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "uibuild:", err)
			os.Exit(1)
		}
		fmt.Printf("%s: %d bytes\n", path, len(b))
	}
	if stale {
		os.Exit(1)
	}
}

// build returns the served files by name: index.html, app.js, app.css.
func build(root string) (map[string][]byte, error) {
	out := map[string][]byte{}
	html, err := os.ReadFile(filepath.Join(root, "ui", "index.html"))
	if err != nil {
		return nil, err
	}
	out["index.html"] = html
	for _, e := range []struct{ entry, name string }{{"ui/src/main.js", "app.js"}, {"ui/src/style.css", "app.css"}} {
		r := api.Build(api.BuildOptions{
			EntryPoints:       []string{filepath.Join(root, e.entry)},
			Bundle:            true,
			MinifyWhitespace:  true,
			MinifyIdentifiers: true,
			MinifySyntax:      true,
			Format:            api.FormatESModule,
			Target:            api.ES2020,
			Charset:           api.CharsetUTF8,
			LegalComments:     api.LegalCommentsNone,
			Write:             false,
		})
		if len(r.Errors) > 0 {
			return nil, fmt.Errorf("%s: %s", e.entry, r.Errors[0].Text)
		}
		out[e.name] = r.OutputFiles[0].Contents
	}
	return out, nil
}
