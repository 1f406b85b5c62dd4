package http

import (
	"net/http"
	"strconv"
	"strings"
)

// Pages for people share some paths with the API: /articles/{slug} is an
// article's JSON for programs and its rendered page for a browser. The
// server decides by the request's Accept header, and only a request that
// ranks text/html above application/json gets the page, so every API client
// (curl's */*, no Accept at all, Accept: application/json) keeps the JSON it
// always had.

// negotiate serves pages to requests that prefer HTML and api to the rest.
// Both answers vary by Accept, and caches must know it.
func negotiate(api http.HandlerFunc, pages http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Accept")
		if prefersHTML(r.Header.Values("Accept")) {
			pages.ServeHTTP(w, r)
			return
		}
		api(w, r)
	}
}

// prefersHTML reports whether the Accept header values rank text/html
// strictly above application/json. Each type takes the quality of the most
// specific range that matches it (text/html, then text/*, then */*), as in
// RFC 9110, section 12.5.1; a type no range matches has quality 0.
func prefersHTML(accept []string) bool {
	html := quality(accept, "text", "html")
	return html > 0 && html > quality(accept, "application", "json")
}

// quality returns the quality the Accept header values give typ/sub.
func quality(accept []string, typ, sub string) float64 {
	best, q := -1, 0.0 // best: specificity of the matching range so far
	for _, value := range accept {
		for _, rng := range strings.Split(value, ",") {
			params := strings.Split(rng, ";")
			mt := strings.ToLower(strings.TrimSpace(params[0]))
			t, s, ok := strings.Cut(mt, "/")
			if !ok {
				continue
			}
			spec := -1
			switch {
			case t == typ && s == sub:
				spec = 2
			case t == typ && s == "*":
				spec = 1
			case t == "*" && s == "*":
				spec = 0
			}
			if spec <= best {
				continue
			}
			best, q = spec, 1
			for _, p := range params[1:] {
				k, v, _ := strings.Cut(p, "=")
				if strings.EqualFold(strings.TrimSpace(k), "q") {
					f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
					if err != nil || f < 0 || f > 1 {
						f = 0 // a broken weight does not win
					}
					q = f
				}
			}
		}
	}
	return q
}
