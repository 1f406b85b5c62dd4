package main

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestServeModelName: --model-name (else RUNNEL_MODEL_NAME, else "runnel")
// names the model of the OpenAI-compatible API.
func TestServeModelName(t *testing.T) {
	for _, tc := range []struct {
		name, env string
		args      []string
		want      string
	}{
		{"default", "", nil, "runnel"},
		{"env", "team-docs", nil, "team-docs"},
		{"flag", "team-docs", []string{"--model-name", "handbook"}, "handbook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("RUNNEL_MODEL_NAME", tc.env)
			url := serve(t, tc.args...)
			res, err := http.Get(url + "/v1/models")
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var list struct {
				Data []struct {
					ID string `json:"id"`
				} `json:"data"`
			}
			if err := json.NewDecoder(res.Body).Decode(&list); err != nil || len(list.Data) != 1 || list.Data[0].ID != tc.want {
				t.Errorf("GET /v1/models = %d %+v, %v; want the model %q", res.StatusCode, list, err, tc.want)
			}
		})
	}
}
