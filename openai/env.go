package openai

import "cmp"

// FromEnv returns the connection Options found in the environment through
// getenv (os.Getenv, or a map's lookup in tests):
//
//	BaseURL  RUNNEL_LLM_URL,     else OPENAI_BASE_URL
//	Model    RUNNEL_LLM_MODEL
//	APIKey   RUNNEL_LLM_API_KEY, else OPENAI_API_KEY
//
// The model is read from RUNNEL_LLM_MODEL only: naming it is what turns
// the LLM on, and an OPENAI_API_KEY that happens to be set for other tools
// must not make runnel spend money. Flags, applied afterwards, win over all
// of these. The other fields are left zero (their defaults).
func FromEnv(getenv func(string) string) Options {
	return Options{
		BaseURL: cmp.Or(getenv("RUNNEL_LLM_URL"), getenv("OPENAI_BASE_URL")),
		Model:   getenv("RUNNEL_LLM_MODEL"),
		APIKey:  cmp.Or(getenv("RUNNEL_LLM_API_KEY"), getenv("OPENAI_API_KEY")),
	}
}
