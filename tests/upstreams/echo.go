// The Go upstream of tests/differential.rs: net/http with a ServeMux, answering every request
// with one JSON line saying what the mux routed on.
//
// Why r.URL.Path behind a ServeMux: that is what a plain Go service routes on. net/http
// percent-decodes the target into r.URL.Path (an encoded "/" becomes a real one), and the
// mux cleans that path: a path with "." or ".." or "//" is not served but redirected
// (301) to its clean form, which the client then requests again, through the gate. So the
// handler only ever sees clean paths; a 301 is what the mux itself answered.
//
// Usage: echo PORT
package main

import (
	"encoding/json"
	"net/http"
	"os"
)

type echo struct {
	Server   string  `json:"server"`
	Method   string  `json:"method"`
	Path     string  `json:"path"`
	Raw      string  `json:"raw"`
	Override *string `json:"override"`
	Role     *string `json:"role"`
}

// header returns the first value of a header, or nil when it is absent.
func header(r *http.Request, name string) *string {
	if v, ok := r.Header[http.CanonicalHeaderKey(name)]; ok && len(v) > 0 {
		return &v[0]
	}
	return nil
}

func handle(w http.ResponseWriter, r *http.Request) {
	override := header(r, "X-HTTP-Method-Override")
	for _, h := range []string{"X-HTTP-Method", "X-Method-Override"} {
		if override == nil {
			override = header(r, h)
		}
	}
	// Rails/Laravel/Symfony-style "_method": whether the app honours it is not something
	// a gate in front can know, so it is reported like the headers.
	if q := r.URL.Query(); override == nil && q.Has("_method") {
		v := q.Get("_method")
		override = &v
	}
	body, err := json.Marshal(echo{
		Server:   "go",
		Method:   r.Method,
		Path:     r.URL.Path,
		Raw:      r.RequestURI,
		Override: override,
		Role:     header(r, "X-Keysmith-Role"),
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
}

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/", handle)
	if err := http.ListenAndServe("127.0.0.1:"+os.Args[1], mux); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}
